"""SECL rule compiler: parser, semantic passes, Python evaluator, policies.

Stages, one module each: ``lexer`` -> ``parser`` (``ast``) -> ``semantics``
(``ir``, ``fields``, ``constants``) -> ``pybackend``; ``policy`` loads YAML
policies (``yamlpos``) into a :class:`agent.evaluator.ruleset.Ruleset`; ``partial`` and
``approvers`` serve the kernel filter compiler.
"""
