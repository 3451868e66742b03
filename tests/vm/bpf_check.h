// The BPF part of the in-guest check (bpf_check.cpp): noded's BPF objects on the guest's kernel.
#pragma once

// Loads and exercises the BPF objects noded uses, pinned under `pin_dir` (on a bpffs; removed
// at the end). Prints one line per check; returns the number of failed checks.
int bpf_checks(const char* pin_dir);
