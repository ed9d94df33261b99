/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * probe.bpf.c - the agent's CO-RE object: every hook of every hook set.
 * The loader enables (autoload) only the programs of the chosen hook set and
 * of the event types the policy needs.
 */
#include "common.h"
#include "hooks/open.h"
#include "hooks/process.h"

char LICENSE[] SEC("license") = "GPL";
