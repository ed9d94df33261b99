# Builds the agent image. Run it privileged with the host's kernel interfaces:
#   docker run --privileged --pid=host -v /sys/kernel:/sys/kernel -v /sys/fs:/sys/fs rsagent
FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        make clang-19 llvm-19 libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config \
        python3 python3-venv python3-dev libffi-dev gcc ca-certificates publicsuffix \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/rsagent
COPY . .
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir . \
    && .venv/bin/python -m agent.build --build-dir /opt/rsagent/build
ENV RSAGENT_OBJECTS=/opt/rsagent/build/ebpf
ENTRYPOINT ["/opt/rsagent/.venv/bin/rsagent"]
CMD ["run"]
