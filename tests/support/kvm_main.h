#pragma once

// main() for KVM test binaries, and the host's capabilities for tests that need one.
//
// Meson judges gtest programs by exit code and GTEST_SKIP alone reads as a pass, so a machine
// without /dev/kvm must see exit 77 (SKIP) with the reason. Within a binary, a test that needs
// a capability the host lacks (PAUSE exits, SCHED_DEADLINE, ...) asks the host, by measuring
// where that is possible (`spindle check --json`), and skips with the reason; no test assumes
// which KVM it runs on. Every binary ends with one summary line that scripts/test counts:
//   kvm-cases: NAME P passed, F failed, S skipped
// and one line per skipped test: `kvm-skip: Suite.Test: reason`.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/run_command.h"

namespace spindle::test {

// `spindle check --json`, run once per test binary.
inline const std::string &hostCheckJson()
{
	static const std::string json = runCommand({spindleBinary(), "check", "--json"}, 120).out;
	return json;
}

struct HostCapability {
	bool present = false;
	std::string detail; // what spindle check measured or found
};

// key: one of spindle check's JSON keys (pause_exits, sched_deadline, cgroup_cpuset,
// guest_native_ring3, tracepoint, ...).
inline HostCapability hostCapability(const std::string &key)
{
	const std::string &json = hostCheckJson();
	HostCapability capability;
	const size_t at = json.find("\"" + key + "\":{\"ok\":");
	if (at == std::string::npos) {
		capability.detail = "spindle check reported nothing about " + key;
		return capability;
	}
	capability.present = json.compare(at + key.size() + 9, 4, "true") == 0;
	const std::string detailKey = "\"detail\":\"";
	const size_t detail = json.find(detailKey, at);
	if (detail != std::string::npos) {
		// The finding, without the advice after " -> ".
		const size_t start = detail + detailKey.size();
		capability.detail = json.substr(start, json.find('"', start) - start);
		capability.detail = capability.detail.substr(0, capability.detail.find(" -> "));
	}
	return capability;
}

class CaseCounter : public testing::EmptyTestEventListener
{
public:
	explicit CaseCounter(std::string name) : name_(std::move(name)) {}
	void OnTestEnd(const testing::TestInfo &info) override
	{
		const testing::TestResult &result = *info.result();
		if (result.Skipped()) {
			++skipped_;
			std::string reason;
			for (int i = 0; i < result.total_part_count(); ++i)
				if (result.GetTestPartResult(i).skipped())
					reason = result.GetTestPartResult(i).message();
			std::printf("kvm-skip: %s.%s: %s\n", info.test_suite_name(), info.name(), reason.c_str());
		} else if (result.Failed()) {
			++failed_;
		} else {
			++passed_;
		}
	}
	void OnTestProgramEnd(const testing::UnitTest &) override
	{
		std::printf("kvm-cases: %s %d passed, %d failed, %d skipped\n", name_.c_str(), passed_, failed_, skipped_);
		std::fflush(stdout);
	}

private:
	std::string name_;
	int passed_ = 0, failed_ = 0, skipped_ = 0;
};

inline int kvmTestMain(int argc, char **argv)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		std::printf("SKIP: cannot open /dev/kvm (%s); run the kvm suite inside the emulated KVM host: "
			    "scripts/test does so\n",
			    std::strerror(errno));
		return 77;
	}
	close(fd);
	testing::InitGoogleTest(&argc, argv);
	const char *slash = std::strrchr(argv[0], '/');
	testing::UnitTest::GetInstance()->listeners().Append(new CaseCounter(slash ? slash + 1 : argv[0]));
	return RUN_ALL_TESTS();
}

} // namespace spindle::test

// Skips the current test, with spindle check's finding, unless the host has the capability.
#define SPINDLE_REQUIRE_CAPABILITY(key)                                                            \
	do {                                                                                       \
		const auto capability = spindle::test::hostCapability(key);                        \
		if (!capability.present)                                                           \
			GTEST_SKIP() << key << " unavailable on this host: " << capability.detail;  \
	} while (0)

#define SPINDLE_KVM_TEST_MAIN()                                                                    \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return spindle::test::kvmTestMain(argc, argv);                                     \
	}
