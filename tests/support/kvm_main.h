#pragma once

// main() for KVM test binaries: Meson judges gtest programs by exit code and GTEST_SKIP alone
// reads as a pass, so a machine without /dev/kvm must see exit 77 (SKIP) with the reason.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <gtest/gtest.h>

#define SPINDLE_KVM_TEST_MAIN()                                                                    \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);                                     \
		if (fd < 0) {                                                                      \
			std::printf("SKIP: cannot open /dev/kvm (%s); run the kvm suite inside "   \
				    "the emulated KVM host: scripts/test does so\n",               \
				    std::strerror(errno));                                         \
			return 77;                                                                 \
		}                                                                                  \
		close(fd);                                                                         \
		testing::InitGoogleTest(&argc, argv);                                              \
		return RUN_ALL_TESTS();                                                            \
	}
