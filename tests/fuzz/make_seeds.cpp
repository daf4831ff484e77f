// Writes the valid seed inputs of tests/fuzz/corpus/ (run from the fuzz build:
// `build-fuzz/tests/fuzz/fuzz-make-seeds tests/fuzz/corpus`). The two targets that read their
// input through FuzzedDataProvider (bus-dispatch, hint-slots) have no hand-written layout: their
// seeds are small inputs an earlier run found, kept as they are.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "guest-kernels/abi/spindle_abi.h"
#include "tests/support/elf_builder.h"

namespace {

using Bytes = std::vector<uint8_t>;

std::filesystem::path root;

void seed(const std::string &target, const std::string &name, const Bytes &bytes)
{
	const auto dir = root / target;
	std::filesystem::create_directories(dir);
	FILE *f = std::fopen((dir / name).c_str(), "wb");
	if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
		std::perror((dir / name).c_str());
		std::exit(1);
	}
}

Bytes text(std::string_view s)
{
	return { s.begin(), s.end() };
}

template<typename T>
Bytes le(T value)
{
	Bytes out(sizeof(T));
	std::memcpy(out.data(), &value, sizeof(T));
	return out;
}

Bytes operator+(Bytes a, const Bytes &b)
{
	a.insert(a.end(), b.begin(), b.end());
	return a;
}

// NUL-separated arguments.
Bytes argv(std::initializer_list<std::string_view> args)
{
	Bytes out;
	bool first = true;
	for (std::string_view arg : args) {
		if (!first)
			out.push_back(0);
		first = false;
		out.insert(out.end(), arg.begin(), arg.end());
	}
	return out;
}

template<typename T>
Bytes record(uint16_t type, T body, uint8_t framing = 0)
{
	body.header = { SPINDLE_PV_MAGIC, type, sizeof(T) };
	// announced length, vCPU count 4, the framing byte (0: no help, RAM size unknown), the mailbox
	return le<uint32_t>(sizeof(T)) + le<uint16_t>(4) + Bytes{ framing } + le(body);
}

void elfSeeds()
{
	using spindle::test::ElfBuilder;
	seed("elf-loader", "ok-exit-seven", ElfBuilder::withCode(0x200000, spindle::test::okExitSevenCode()).build());
	ElfBuilder bss = ElfBuilder::withCode(0x200000, spindle::test::spinForeverCode());
	bss.segments.push_back({ 0x201000, { 1, 2, 3, 4 }, 0x3000, PF_R | PF_W });
	seed("elf-loader", "code-and-bss", bss.build());
	ElfBuilder high = ElfBuilder::withCode(0x3ff000, spindle::test::spinForeverCode());
	seed("elf-loader", "near-window-end", high.build());
	Bytes note = ElfBuilder::withCode(0x100000, { 0xf4 }).build();
	Elf64_Phdr ph;
	std::memcpy(&ph, note.data() + sizeof(Elf64_Ehdr), sizeof(ph));
	ph.p_type = PT_NOTE; // a header the loader skips, then no PT_LOAD at all
	std::memcpy(note.data() + sizeof(Elf64_Ehdr), &ph, sizeof(ph));
	seed("elf-loader", "no-load-segment", note);
}

void pvSeeds()
{
	spindle_pv_header ready{ SPINDLE_PV_MAGIC, SPINDLE_PV_READY, sizeof(spindle_pv_header) };
	seed("pv-record", "ready", le<uint32_t>(8) + le<uint16_t>(4) + Bytes{ 0 } + le(ready));
	seed("pv-record", "exit-7", record(SPINDLE_PV_EXIT, spindle_pv_exit{ {}, 7, 0 }));
	spindle_pv_error error{};
	std::strcpy(error.text, "lockbench: unknown lock 'foo'");
	seed("pv-record", "error", record(SPINDLE_PV_ERROR, error));
	seed("pv-record", "long-spin", record(SPINDLE_PV_LONG_SPIN, spindle_pv_long_spin{ {}, 3, 1, 4096 }));
	spindle_pv_result_vcpu vcpu{};
	vcpu.mode = SPINDLE_MODE_LOCK;
	vcpu.ops = 1000;
	vcpu.latency_ns_hist[7] = 1000;
	seed("pv-record", "result-vcpu", record(SPINDLE_PV_RESULT_VCPU, vcpu));
	spindle_pv_result_vm vm{};
	vm.mode = SPINDLE_MODE_LOCK;
	vm.lock = SPINDLE_LOCK_MCS;
	vm.duration_ns = 1'000'000'000;
	seed("pv-record", "result-vm", record(SPINDLE_PV_RESULT_VM, vm));
	spindle_pv_header halt{ SPINDLE_PV_MAGIC, SPINDLE_PV_HALT, sizeof(spindle_pv_header) };
	seed("pv-record", "halt", le<uint32_t>(8) + le<uint16_t>(4) + Bytes{ 0 } + le(halt));
	constexpr uint8_t kRam64M = 2 << 2; // framing bits 2-3: the decoder is told of 64 MiB of RAM
	seed("pv-record", "wait-on-word", record(SPINDLE_PV_WAIT, spindle_pv_wait{ {}, 0x200000, 1, 0, 50'000 }, kRam64M));
	seed("pv-record", "wait-no-word", record(SPINDLE_PV_WAIT, spindle_pv_wait{ {}, 0, 0, 0, 0 }));
	seed("pv-record", "kick", record(SPINDLE_PV_KICK, spindle_pv_kick{ {}, 2, 0 }));
}

// The sampling target's four modes (fuzz_sampling.cpp has the layouts): a PAUSE loop, a poll
// loop and a compute loop as guest code, seen by the decoder, the classifier and, through 4-level
// page tables with a 2 MiB and with a 4 KiB leaf, the page walker; and a vCPU caught spinning.
void samplingSeeds()
{
	const Bytes pauseLoop{ 0xf3, 0x90, 0x8b, 0x07, 0x85, 0xc0, 0x75, 0xf8 }; // pause; mov eax,[rdi]; test; jne top
	const Bytes pollLoop{ 0x8b, 0x07, 0x85, 0xc0, 0x75, 0xfa };             // mov eax,[rdi]; test; jne top
	const Bytes computeLoop{ 0xff, 0xc0, 0xeb, 0xfc };                       // inc eax; jmp top
	const Bytes lockCmpxchg{ 0xf0, 0x0f, 0xb1, 0x17 };                       // lock cmpxchg [rdi],edx
	const uint64_t code = 0x200000;
	seed("sampling", "decode-pause", Bytes{ 0 } + le(code) + pauseLoop);
	seed("sampling", "decode-lock-cmpxchg", Bytes{ 0 } + le(code) + lockCmpxchg);
	seed("sampling", "classify-pause-loop", Bytes{ 1 } + le(code) + le<uint16_t>(2) + pauseLoop);
	seed("sampling", "classify-poll-loop", Bytes{ 1 } + le(code) + le<uint16_t>(0) + pollLoop);
	seed("sampling", "classify-compute-loop", Bytes{ 1 } + le(code) + le<uint16_t>(0) + computeLoop);

	// RAM of 5 pages: code at 0x100, PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000, PT at 0x4000.
	auto tables = [&](bool largePage) {
		Bytes ram(5 * 4096, 0);
		auto entry = [&](uint64_t at, uint64_t value) { std::memcpy(ram.data() + at, &value, 8); };
		entry(0x1000, 0x2000 | 3);
		entry(0x2000, 0x3000 | 3);
		entry(0x3000, largePage ? (0x0 | 3 | 0x80) : (0x4000 | 3));
		entry(0x4000, 0x0 | 3);
		std::memcpy(ram.data() + 0x100, pauseLoop.data(), pauseLoop.size());
		// CR0 PG|PE, CR3 0x1000, CR4 PAE, EFER LMA (the selectors' first choices), RIP on the PAUSE
		return Bytes{ 2, 0, 1, 0, 0 } + le<uint64_t>(0x100) + ram;
	};
	seed("sampling", "walk-2m-page", tables(true));
	seed("sampling", "walk-4k-page", tables(false));

	Bytes spinning = Bytes{ 3, 8, 2, 5 };
	for (int i = 0; i < 12; ++i)
		spinning = spinning + le<uint16_t>(1000) + Bytes{ 0x10, 3, 0, 0x03 }; // 1 ms apart, in the loop
	seed("sampling", "history-spinning", spinning);
}

void textSeeds()
{
	const Bytes max255 = le<uint64_t>(255);
	seed("guest-args", "hello-exit", max255 + text("exit=3"));
	seed("guest-args", "lockbench", max255 + text("mode=lock lock=mcs cs=1us think=2us duration=1s"));
	seed("guest-args", "spaces-and-bare", le<uint64_t>(7) + text("  a=1   bare  b==2 "));

	const Bytes cap = { 191 }; // the guest's buffer is 192 bytes
	seed("lockbench-params", "all-keys", cap + text("mode=lock lock=pvticket cs=500ns think=2us duration=1s"));
	seed("lockbench-params", "fractions", cap + text("mode=barrier cs=0 think=1.5us duration=2.25ms"));
	seed("lockbench-params", "cpu", cap + text("mode=cpu duration=600s"));
	seed("lockbench-params", "pvhalt", cap + text("mode=lock lock=pvhalt cs=1us"));
	seed("lockbench-params", "bad-lock", Bytes{ 31 } + text("lock=foo"));

	seed("parse", "unsigned", Bytes{ 0 } + le<uint64_t>(1) + le<uint64_t>(256) + text("42"));
	seed("parse", "size", Bytes{ 1 } + text("64MiB"));
	seed("parse", "duration", Bytes{ 2 } + text("1.5ms"));
	seed("parse", "duration-max", Bytes{ 2 } + text("18446744073.709551615s")); // exactly 2^64 - 1 ns
	seed("parse", "cpu-list", Bytes{ 3 } + le<uint16_t>(4095) + text("0-3,6,8-9"));
	seed("parse", "split", Bytes{ 4 } + text(",a,,b,"));

	seed("run-options", "single", Bytes{ 0 } + argv({ "hello", "-c", "4", "--mem=128M", "--", "exit=3" }));
	seed("run-options", "two-vms", Bytes{ 0 } + argv({ "--vm", "lockbench,cpus=2,mem=64M,args=\"lock=mcs cs=1us\",name=a",
							    "--vm", "hello,name=b", "--policy", "coboost", "--pcpus",
							    "0-1", "--timeout", "500ms", "--boost-slice", "1ms" }));
	seed("run-options", "longest-timeout", Bytes{ 0 } + argv({ "hello", "--timeout=604800s" }));
	seed("run-options", "kernel", Bytes{ 0 } + argv({ "--kernel", "/tmp/k.elf", "--serial", "file=/tmp/s", "--ple", "off",
							  "--spin-threshold", "100", "--log-level=warn", "--stats" }));
	seed("run-options", "vm-spec", Bytes{ 1 } + text("kernel,kernel=/tmp/k.elf,cpus=4,mem=1G,name=k-1"));

	seed("bench-options", "quick", argv({ "--quick" }));
	seed("bench-options", "limits", argv({ "--pcpus", "0-255", "--run-timeout", "604800s", "--duration", "600s" }));
	seed("bench-options", "every-flag", argv({ "--policies", "cfs,coboost-nople", "--overcommit=1,2x", "--locks",
						    "ticket,mcs", "--cs", "0,1us", "--think", "0", "--duration", "250ms",
						    "--repeats", "2", "--fairness", "off", "--pcpus", "0-1", "--vcpus", "2",
						    "--run-timeout", "60s", "--out", "/tmp/bench" }));

	seed("bench-matrix", "small", Bytes{ 5 } + le<uint64_t>(1500) +
					      argv({ "cfs,coboost-nople", "1,2x", "ticket,mcs", "0,500ns" }));
	seed("bench-matrix", "deadline-variants", Bytes{ 1 } + le<uint64_t>(50'000) +
						  argv({ "gang-dl,adaptive-dl-nople,adaptive", "2", "pvticket", "500ns" }));
	seed("bench-matrix", "one-cell", Bytes{ 0 } + le<uint64_t>(2'000'000'000) + argv({ "adaptive", "4", "pvticket", "10ms" }));
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	elfSeeds();
	pvSeeds();
	textSeeds();
	samplingSeeds();
	return 0;
}
