#pragma once

// `spindle check`: what this host offers Spindle, in the spirit of virt-host-validate.

namespace spindle {

// Prints one line per check; returns 0 when KVM itself is usable, 1 otherwise.
int runHostCheck();

} // namespace spindle
