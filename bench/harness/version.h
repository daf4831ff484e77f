#pragma once

namespace spindle::bench {

// `git describe --always --dirty` of the source tree at build time, or the Meson project
// version when the tree is not a git checkout. Recorded in every benchmark output.
const char *spindleVersion();

} // namespace spindle::bench
