#include "sched/sampling/spin_classifier.h"

#include <algorithm>

#include "sched/sampling/x86_decoder.h"

namespace spindle::sched::sampling {

namespace {

// What a value in a loop depends on, ordered so that the max of the inputs is the output's:
// the same in every iteration, loaded from memory (at a fixed address, through fixed values), or
// changed by the loop itself (a counter, an address that moves, a flag set before the loop).
enum class Source : uint8_t { Invariant, Memory, Varying };

Source join(Source a, Source b) { return std::max(a, b); }

class CycleSearch
{
public:
	explicit CycleSearch(const CodeWindow &window) : w_(window) {}

	SpinVerdict run()
	{
		if (!decodeAt(w_.rip)) {
			verdict_.reason = NoSpinReason::Undecodable;
			return verdict_;
		}
		visit(w_.rip);
		return verdict_;
	}

private:
	std::optional<Instruction> decodeAt(uint64_t at) const
	{
		if (at < w_.base || at - w_.base >= w_.bytes.size())
			return std::nullopt;
		return decodeInstruction(w_.bytes.subspan(at - w_.base), at);
	}

	// Depth-first along the paths from `at`; true once a spin cycle is recorded. A node that was
	// explored to the end without finding one, with at least as many instructions of the cycle
	// left, is not explored again: that keeps the search near-linear in the window's
	// instructions (the budget bounds the rest).
	bool visit(uint64_t at)
	{
		if (budget_ == 0 || depth_ == kMaxPauseLoopInstructions)
			return false;
		if (at < w_.base || at - w_.base >= w_.bytes.size())
			return false;
		size_t offset = at - w_.base;
		uint8_t left = static_cast<uint8_t>(kMaxPauseLoopInstructions - depth_);
		if (explored_[offset] >= left)
			return false;
		auto insn = decodeAt(at);
		if (!insn)
			return false;
		budget_--;
		path_[depth_++] = *insn;
		onPath_[offset] = true;
		uint64_t next = insn->address + insn->length;
		bool found = false;
		switch (insn->flow) {
		case Flow::Next:
			found = follow(next);
			break;
		case Flow::Jump:
			found = follow(insn->target);
			break;
		case Flow::Branch:
			// Loops close with a backward branch: try the taken way first when it goes back.
			if (insn->target <= insn->address)
				found = follow(insn->target) || follow(next);
			else
				found = follow(next) || follow(insn->target);
			break;
		default:
			break; // calls, returns, indirect jumps and traps leave what we can see
		}
		onPath_[offset] = false;
		depth_--;
		if (!found)
			explored_[offset] = std::max(explored_[offset], left);
		return found;
	}

	bool follow(uint64_t to)
	{
		if (to == w_.rip)
			return closeCycle();
		if (to >= w_.base && to - w_.base < w_.bytes.size() && onPath_[to - w_.base])
			return false; // an inner cycle that does not pass through RIP
		return visit(to);
	}

	// path_[0, depth_) is a cycle through RIP. Records it if it is a spin, or if it is the first
	// cycle seen (so the verdict can say why the code at RIP is not a spin); true for a spin.
	bool closeCycle()
	{
		std::span<const Instruction> cycle(path_.data(), depth_);
		SpinVerdict v;
		v.instructions = depth_;
		v.loopLow = cycle[0].address;
		v.loopEnd = 0;
		for (const Instruction &insn : cycle) {
			v.loopLow = std::min(v.loopLow, insn.address);
			v.loopEnd = std::max(v.loopEnd, insn.address + insn.length);
		}
		v.reason = judge(cycle, v);
		v.kind = v.reason != NoSpinReason::None ? SpinKind::None
			 : std::any_of(cycle.begin(), cycle.end(), [](const Instruction &i) { return i.pause; })
				 ? SpinKind::PauseLoop
				 : SpinKind::PollLoop;
		if (v.spin() || !sawCycle_) {
			verdict_ = v;
			sawCycle_ = true;
		}
		return v.spin();
	}

	static NoSpinReason judge(std::span<const Instruction> cycle, const SpinVerdict &loop)
	{
		if (std::any_of(cycle.begin(), cycle.end(), [](const Instruction &i) { return i.pause; }))
			return NoSpinReason::None;
		if (cycle.size() > kMaxPollLoopInstructions)
			return NoSpinReason::LoopTooLong;
		for (const Instruction &insn : cycle)
			if (insn.writesMemory && !insn.atomic)
				return NoSpinReason::StoresToMemory;
		return waitsOnMemory(cycle, loop) ? NoSpinReason::None : NoSpinReason::NoMemoryWait;
	}

	// Data flow over the cycle, twice round (the second pass sees what the loop carries from one
	// iteration to the next): does an exit branch decide on memory and invariants only?
	static bool waitsOnMemory(std::span<const Instruction> cycle, const SpinVerdict &loop)
	{
		RegMask written = 0;
		for (const Instruction &insn : cycle)
			written |= insn.regsWritten;
		std::array<Source, 16> regs;
		for (unsigned r = 0; r < 16; r++)
			regs[r] = written & regBit(r) ? Source::Varying : Source::Invariant;
		Source flags = Source::Varying; // whatever set them before the loop

		for (int pass = 0; pass < 2; pass++) {
			for (size_t i = 0; i < cycle.size(); i++) {
				const Instruction &insn = cycle[i];
				Source in = Source::Invariant;
				if (insn.readsMemory)
					in = insn.addressRegs & written ? Source::Varying : Source::Memory;
				for (unsigned r = 0; r < 16; r++)
					if (insn.regsRead & regBit(r))
						in = join(in, regs[r]);
				if (insn.flow == Flow::Branch) {
					Source decision = insn.readsFlags ? join(in, flags) : in;
					// The way the cycle did not take leaves the loop's bytes: an exit.
					uint64_t taken = cycle[(i + 1) % cycle.size()].address;
					uint64_t other = taken == insn.target ? insn.address + insn.length : insn.target;
					bool exit = other < loop.loopLow || other >= loop.loopEnd;
					if (pass == 1 && exit && decision == Source::Memory)
						return true;
				}
				if (insn.readsFlags && insn.writesFlags)
					in = join(in, flags);
				for (unsigned r = 0; r < 16; r++)
					if (insn.regsWritten & regBit(r))
						regs[r] = in;
				if (insn.writesFlags)
					flags = in;
			}
		}
		return false;
	}

	const CodeWindow &w_;
	std::array<Instruction, kMaxPauseLoopInstructions> path_;
	std::array<bool, kCodeWindowBytes> onPath_{};
	std::array<uint8_t, kCodeWindowBytes> explored_{}; // instructions left when explored in vain
	unsigned depth_ = 0;
	unsigned budget_ = kSearchBudget;
	bool sawCycle_ = false;
	SpinVerdict verdict_;
};

} // namespace

const char *toString(SpinKind kind)
{
	switch (kind) {
	case SpinKind::PauseLoop: return "pause-loop";
	case SpinKind::PollLoop: return "poll-loop";
	default: return "none";
	}
}

const char *toString(NoSpinReason reason)
{
	switch (reason) {
	case NoSpinReason::None: return "spin";
	case NoSpinReason::Unmapped: return "unmapped";
	case NoSpinReason::RipOutsideWindow: return "rip-outside-window";
	case NoSpinReason::Undecodable: return "undecodable";
	case NoSpinReason::NoLoop: return "no-loop";
	case NoSpinReason::LoopTooLong: return "loop-too-long";
	case NoSpinReason::StoresToMemory: return "stores-to-memory";
	case NoSpinReason::NoMemoryWait: return "no-memory-wait";
	}
	return "?";
}

SpinVerdict classifyCode(const CodeWindow &window)
{
	if (window.rip < window.base || window.rip - window.base >= window.bytes.size()) {
		SpinVerdict v;
		v.reason = NoSpinReason::RipOutsideWindow;
		return v;
	}
	// Only the standard window around RIP counts, whatever the caller passed: the verdict does
	// not depend on how much code the caller had, and the search's tables stay fixed-size.
	uint64_t ripOffset = window.rip - window.base;
	uint64_t from = ripOffset > kCodeBytesBefore ? ripOffset - kCodeBytesBefore : 0;
	uint64_t size = std::min<uint64_t>(window.bytes.size() - from, (ripOffset - from) + kCodeBytesAfter);
	CodeWindow trimmed{window.bytes.subspan(from, size), window.base + from, window.rip};
	return CycleSearch(trimmed).run();
}

Result<CodeWindow> readCodeWindow(const GuestPageWalker &walker, uint64_t rip,
				  std::span<uint8_t, kCodeWindowBytes> buffer)
{
	constexpr uint64_t kPage = paging::k4K;
	// The window is [lo, hi) in 64 bits, so the last byte of the address space cannot be in it
	// (and nothing that starts there is a loop a compiler makes).
	if (rip == UINT64_MAX)
		return Error::invalid("RIP at the last byte of the address space");
	uint64_t lo = rip >= kCodeBytesBefore ? rip - kCodeBytesBefore : 0;
	uint64_t hi = rip <= UINT64_MAX - kCodeBytesAfter ? rip + kCodeBytesAfter : UINT64_MAX;
	auto into = [&](uint64_t from, uint64_t to) { return buffer.subspan(from - lo, to - from); };

	// Forward from RIP, one 4 KiB piece at a time, until the end or the first unmapped piece.
	uint64_t end = rip;
	while (end < hi) {
		// The end of this page, without wrapping past the top of the address space (a hostile
		// guest may map its last page: found by fuzz-sampling).
		const uint64_t pageLast = end | (kPage - 1);
		uint64_t next = pageLast >= hi ? hi : pageLast + 1;
		auto s = walker.read(end, into(end, next));
		if (!s) {
			if (end == rip)
				return s.error();
			break;
		}
		end = next;
	}
	// Backward from RIP likewise.
	uint64_t start = rip;
	while (start > lo) {
		uint64_t prev = std::max(lo, (start - 1) & ~(kPage - 1));
		if (!walker.read(prev, into(prev, start)))
			break;
		start = prev;
	}
	return CodeWindow{into(start, end), start, rip};
}

SpinVerdict classifyAt(const GuestPageWalker &walker, uint64_t rip)
{
	std::array<uint8_t, kCodeWindowBytes> buffer;
	auto window = readCodeWindow(walker, rip, buffer);
	if (!window) {
		SpinVerdict v;
		v.reason = NoSpinReason::Unmapped;
		return v;
	}
	return classifyCode(*window);
}

} // namespace spindle::sched::sampling
