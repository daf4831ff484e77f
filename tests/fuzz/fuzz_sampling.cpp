// Fuzzes the sampling spin detector's pure core (sched/sampling/): what a hostile guest controls
// there is its page tables, its code bytes and where its RIP is when sampled.
//
// Input: a mode byte, then per mode:
//   0 decoder:    an address (u64), then instruction bytes;
//   1 classifier: a window base (u64), a RIP offset (u16), then the window's bytes (at most
//                 kCodeWindowBytes);
//   2 page walk:  CR0/CR3/CR4/EFER selectors (one byte each), a virtual address (u64), then the
//                 guest RAM (padded with zeros to whole pages, at most 16 pages, the last one
//                 mapped as the MMIO hole when the mode byte's bit 7 is set);
//   3 history:    a config (window, low, high as bytes), then samples of 6 bytes (time step
//                 u16 in µs, RIP low byte, CPL, CR8, verdict byte).
// Contract (the headers' comments):
//   decodeInstruction: a decoded instruction is 1..15 bytes, within the bytes given, at the given
//     address, and decodes the same from exactly its own bytes; PAUSE is a Next instruction.
//   classifyCode: a RIP outside the window is RipOutsideWindow; a spin has reason None, a cycle
//     that holds the RIP, lies inside the window and is at most its kind's length; a non-spin has
//     a reason; the same window gives the same verdict.
//   GuestPageWalker: a translation lands in RAM, outside the hole, on the page-size alignment of
//     the address; read() succeeds only when every byte translates, and returns the bytes at
//     those translations; readCodeWindow's window holds the RIP and has the RAM's bytes;
//     classifyAt never fails.
//   SampleHistory: an invalid config is refused; spinning turns on only above the high threshold
//     and off only below the low one; a report comes only on a spin-like sample while spinning;
//     the spin-like count never exceeds the window.

#include <algorithm>
#include <cstring>
#include <vector>

#include "sched/sampling/guest_page_walk.h"
#include "sched/sampling/sample_history.h"
#include "sched/sampling/spin_classifier.h"
#include "sched/sampling/x86_decoder.h"
#include "tests/fuzz/fuzz.h"

using namespace spindle;
using namespace spindle::fuzz;
using namespace spindle::sched::sampling;

namespace {

bool sameInstruction(const Instruction &a, const Instruction &b)
{
	return a.address == b.address && a.length == b.length && a.flow == b.flow && a.target == b.target &&
	       a.pause == b.pause && a.readsMemory == b.readsMemory && a.writesMemory == b.writesMemory &&
	       a.atomic == b.atomic && a.readsFlags == b.readsFlags && a.writesFlags == b.writesFlags &&
	       a.regsRead == b.regsRead && a.regsWritten == b.regsWritten && a.addressRegs == b.addressRegs;
}

void checkDecoder(ByteReader &in)
{
	const uint64_t address = in.take<uint64_t>();
	const std::vector<uint8_t> bytes(in.rest(), in.rest() + std::min<size_t>(in.restSize(), 32));

	const auto insn = decodeInstruction(bytes, address);
	if (!insn)
		return;
	FUZZ_REQUIRE(insn->length >= 1 && insn->length <= kMaxInstructionLength && insn->length <= bytes.size());
	FUZZ_REQUIRE(insn->address == address);
	FUZZ_REQUIRE(!insn->pause || insn->flow == Flow::Next);
	const std::vector<uint8_t> own(bytes.begin(), bytes.begin() + insn->length);
	const auto again = decodeInstruction(own, address);
	FUZZ_REQUIRE(again && sameInstruction(*insn, *again));
}

bool sameVerdict(const SpinVerdict &a, const SpinVerdict &b)
{
	return a.kind == b.kind && a.reason == b.reason && a.loopLow == b.loopLow && a.loopEnd == b.loopEnd &&
	       a.instructions == b.instructions;
}

void checkVerdict(const SpinVerdict &verdict, const CodeWindow &window)
{
	if (!verdict.spin()) {
		FUZZ_REQUIRE(verdict.reason != NoSpinReason::None);
		return;
	}
	FUZZ_REQUIRE(verdict.reason == NoSpinReason::None);
	FUZZ_REQUIRE(verdict.instructions >= 1);
	FUZZ_REQUIRE(verdict.inLoop(window.rip));
	FUZZ_REQUIRE(verdict.loopLow >= window.base && verdict.loopEnd <= window.base + window.bytes.size());
	if (verdict.kind == SpinKind::PauseLoop)
		FUZZ_REQUIRE(verdict.instructions <= kMaxPauseLoopInstructions);
	else
		FUZZ_REQUIRE(verdict.instructions <= kMaxPollLoopInstructions);
}

void checkClassifier(ByteReader &in)
{
	// Below 2^63, so base + size cannot wrap and the contract's arithmetic stays simple; the
	// decoder's own wrap-around is covered by the decoder mode.
	const uint64_t base = in.take<uint64_t>() >> 1;
	const uint16_t ripOffset = in.take<uint16_t>();
	const std::vector<uint8_t> bytes(in.rest(), in.rest() + std::min<size_t>(in.restSize(), kCodeWindowBytes));
	const CodeWindow window{bytes, base, base + ripOffset};

	const SpinVerdict verdict = classifyCode(window);

	if (ripOffset >= bytes.size()) {
		FUZZ_REQUIRE(!verdict.spin() && verdict.reason == NoSpinReason::RipOutsideWindow);
		return;
	}
	checkVerdict(verdict, window);
	FUZZ_REQUIRE(sameVerdict(verdict, classifyCode(window)));
}

// A few values per control register that matter to the walker, and one taken from the input.
uint64_t pick(uint8_t selector, std::initializer_list<uint64_t> choices, uint64_t raw)
{
	const size_t i = selector % (choices.size() + 1);
	return i < choices.size() ? *(choices.begin() + i) : raw;
}

void checkPageWalk(ByteReader &in, bool withHole)
{
	using namespace paging;
	const uint8_t cr0Sel = in.take<uint8_t>(), cr3Sel = in.take<uint8_t>(), cr4Sel = in.take<uint8_t>(),
		      eferSel = in.take<uint8_t>();
	const uint64_t va = in.take<uint64_t>();
	constexpr size_t kMaxPages = 16;
	const size_t pages = std::clamp<size_t>((in.restSize() + k4K - 1) / k4K, 1, kMaxPages);
	std::vector<uint8_t> ram(pages * k4K, 0);
	std::memcpy(ram.data(), in.rest(), std::min(in.restSize(), ram.size()));

	GuestRam guestRam{ram, 0, 0};
	if (withHole && pages > 1) {
		guestRam.holeStart = (pages - 1) * k4K;
		guestRam.holeEnd = pages * k4K;
	}
	const PagingRegisters regs{
		pick(cr0Sel, {kCr0Pg | 1, 0}, cr0Sel * 0x01010101ull << 24),
		pick(cr3Sel, {0, k4K, 2 * k4K}, static_cast<uint64_t>(cr3Sel) << 12),
		pick(cr4Sel, {kCr4Pae, 0, kCr4Pae | kCr4La57}, cr4Sel),
		pick(eferSel, {kEferLma, kEferLma | kEferNxe, 0}, static_cast<uint64_t>(eferSel) << 8),
	};
	const GuestPageWalker walker(guestRam, regs);

	const auto translation = walker.translate(va);
	if (translation) {
		FUZZ_REQUIRE(guestRam.contains(translation->gpa, 1));
		FUZZ_REQUIRE(translation->pageSize == k4K || translation->pageSize == k2M || translation->pageSize == k1G);
		FUZZ_REQUIRE(translation->gpa % translation->pageSize == va % translation->pageSize);
	} else {
		requireInputError(translation.error());
	}

	// read() of a few bytes across a page boundary: all or nothing, and the right bytes.
	std::vector<uint8_t> out(24);
	const uint64_t start = va - 8;
	if (walker.read(start, out)) {
		for (size_t i = 0; i < out.size(); ++i) {
			const auto t = walker.translate(start + i);
			FUZZ_REQUIRE(t && out[i] == ram[t->gpa]);
		}
	}

	std::array<uint8_t, kCodeWindowBytes> buffer{};
	const auto window = readCodeWindow(walker, va, buffer);
	FUZZ_REQUIRE(window.ok() == (translation.ok() && va != UINT64_MAX));
	if (window) {
		FUZZ_REQUIRE(window->rip == va && window->rip >= window->base &&
			     window->rip - window->base < window->bytes.size());
		FUZZ_REQUIRE(window->bytes.data() >= buffer.data() &&
			     window->bytes.data() + window->bytes.size() <= buffer.data() + buffer.size());
		const auto t = walker.translate(window->rip);
		FUZZ_REQUIRE(t && window->bytes[window->rip - window->base] == ram[t->gpa]);
	}
	const SpinVerdict verdict = classifyAt(walker, va);
	if (!window)
		FUZZ_REQUIRE(!verdict.spin() && verdict.reason == NoSpinReason::Unmapped);
}

void checkHistory(ByteReader &in)
{
	SampleHistoryConfig config;
	config.window = in.take<uint8_t>() % 70;
	config.spinLow = in.take<uint8_t>() % 70;
	config.spinHigh = in.take<uint8_t>() % 70;
	const bool valid = config.spinLow <= config.spinHigh && config.spinHigh < config.window && config.window <= 64;
	const Status status = validateConfig(config);
	FUZZ_REQUIRE(status.ok() == valid);
	if (!valid) {
		requireInputError(status.error());
		return;
	}

	SampleHistory history(config);
	uint64_t now = 1'000'000'000;
	while (in.restSize() >= 6) {
		VcpuSample sample;
		now += in.take<uint16_t>() * 1000ull;
		sample.timeNs = now;
		sample.rip = 0x200000 + in.take<uint8_t>();
		sample.cpl = in.take<uint8_t>() & 3;
		sample.cr8 = in.take<uint8_t>() & 15;
		const uint8_t verdictByte = in.take<uint8_t>();
		if (verdictByte & 1) {
			sample.verdict.kind = verdictByte & 2 ? SpinKind::PauseLoop : SpinKind::PollLoop;
			sample.verdict.reason = NoSpinReason::None;
			sample.verdict.loopLow = 0x200000 + (verdictByte >> 2);
			sample.verdict.loopEnd = sample.verdict.loopLow + 16;
			sample.verdict.instructions = 3;
		}
		const bool wasSpinning = history.spinning();

		const SampleOutcome outcome = history.feed(sample);

		const unsigned count = history.spinLikeInWindow();
		FUZZ_REQUIRE(count <= config.window);
		FUZZ_REQUIRE(outcome.spinning == history.spinning());
		FUZZ_REQUIRE(!outcome.spinLike || sample.verdict.spin());
		if (outcome.entered)
			FUZZ_REQUIRE(!wasSpinning && outcome.spinning && count > config.spinHigh);
		if (outcome.spinning && !wasSpinning)
			FUZZ_REQUIRE(outcome.entered);
		if (outcome.left && outcome.spinning == false && wasSpinning)
			FUZZ_REQUIRE(count < config.spinLow || count == 0);
		if (outcome.report)
			FUZZ_REQUIRE(outcome.spinning && outcome.spinLike);
		FUZZ_REQUIRE(history.hints().cpl == sample.cpl && history.hints().cr8 == sample.cr8);
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ByteReader in(data, size);
	const uint8_t mode = in.take<uint8_t>();
	switch (mode & 3) {
	case 0: checkDecoder(in); break;
	case 1: checkClassifier(in); break;
	case 2: checkPageWalk(in, mode & 0x80); break;
	case 3: checkHistory(in); break;
	}
	return 0;
}
