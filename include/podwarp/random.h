// Random identifiers from the kernel's CSPRNG, cheaply.
//
// Each thread keeps a small buffer filled by getrandom(2), so an identifier costs a copy out
// of that buffer rather than a call into OpenSSL's DRBG (a lock, and a getpid(2) for fork
// detection, on every call: ~6% of the apiserver's main thread under a create load). A child
// made by fork() starts with an empty buffer (pthread_atfork), so it never repeats its
// parent's bytes. Children made by a raw clone(2) without atfork handlers must not call these
// before exec.
//
// All functions are safe to call from any thread.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace podwarp {

// Fills out with random bytes. Aborts if the kernel refuses (getrandom(2) on the urandom pool
// does not fail once the pool is initialised, which it is long before any of this runs).
void random_bytes(std::span<unsigned char> out);

// A random (version 4) UUID in its canonical form, "3f0c2c8e-6f1d-4c1a-9b0e-1f2a3b4c5d6e":
// metadata.uid, token ids.
std::string random_uuid();

// n characters from apimachinery's alphabet for generated names ("bcdfghjklmnpqrstvwxz2456789":
// no vowels, no look-alikes), uniformly (bytes that would bias the choice are skipped), as
// utilrand.String makes the suffix of generateName.
std::string random_string(std::size_t n);

}  // namespace podwarp
