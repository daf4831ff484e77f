#pragma once

// Is a vCPU whose RIP we sampled sitting in a spin loop? Decided from the instruction bytes
// around the RIP alone (the history of samples is sample_history.h's job).
//
// The rules (sched/sampling/README.md has them with the reasons):
//  1. A loop is a control-flow cycle that starts and ends at RIP: decoding forward from RIP,
//     following direct jumps and both ways of each conditional branch, within the bytes of the
//     code window, back to RIP. Calls, returns, indirect jumps, traps and undecodable bytes end a
//     path; an inner cycle that does not pass through RIP is not followed. The search stops
//     after kSearchBudget decoded instructions, so a hostile maze of branches costs a bounded
//     amount of work (and at worst hides a spin, which only hurts the guest itself).
//  2. A cycle of at most kMaxPauseLoopInstructions that executes PAUSE is a spin (PauseLoop):
//     PAUSE is how compilers and kernels spell "spin-wait hint".
//  3. A cycle without PAUSE is a spin (PollLoop) if it is at most kMaxPollLoopInstructions long,
//     stores nothing to memory except by a locked read-modify-write (xchg, lock cmpxchg, ...),
//     and at least one branch that leaves the loop decides on a value loaded from memory at an
//     address the loop does not change, combined only with values that stay the same in every
//     iteration: such a loop can only end when another CPU writes that memory. A counting loop,
//     a compute loop, pointer chasing and a copy loop all fail one of these.
//
// Everything here is pure and works on copies of guest bytes; readCodeWindow() does the one
// guest-memory access, through the page walker.

#include <array>
#include <cstdint>
#include <span>

#include "common/result.h"
#include "sched/sampling/guest_page_walk.h"

namespace spindle::sched::sampling {

// The bytes looked at around a sampled RIP: 128 before it (loops are entered at the top and the
// sample lands anywhere in them; compilers also rotate loops so the head comes after a jump) and
// 192 from it (a loop that starts at RIP, plus room for the instruction that closes it). The
// largest bundled wait loop, pvticket's, spans 134 bytes (its executed cycle is 15 instructions).
constexpr uint64_t kCodeBytesBefore = 128;
constexpr uint64_t kCodeBytesAfter = 192;
constexpr size_t kCodeWindowBytes = kCodeBytesBefore + kCodeBytesAfter;

constexpr unsigned kMaxPauseLoopInstructions = 32;
constexpr unsigned kMaxPollLoopInstructions = 16;
constexpr unsigned kSearchBudget = 256;

struct CodeWindow {
	std::span<const uint8_t> bytes;
	uint64_t base = 0; // guest virtual address of bytes[0]
	uint64_t rip = 0;  // the sampled RIP, inside [base, base + bytes.size())
};

enum class SpinKind : uint8_t {
	None,
	PauseLoop, // a short loop that executes PAUSE
	PollLoop,  // a short load-compare-branch loop without PAUSE
};

enum class NoSpinReason : uint8_t {
	None,             // it is a spin
	Unmapped,         // RIP's page could not be translated or read (classifyAt only)
	RipOutsideWindow, // the caller's window does not hold RIP
	Undecodable,      // the instruction at RIP is not one the decoder knows
	NoLoop,           // no cycle back to RIP within the window and the search budget
	LoopTooLong,      // a cycle without PAUSE of more than kMaxPollLoopInstructions
	StoresToMemory,   // a cycle without PAUSE that stores to memory (not a locked RMW)
	NoMemoryWait,     // a cycle without PAUSE whose exits do not wait on memory
};

const char *toString(SpinKind kind);
const char *toString(NoSpinReason reason);

struct SpinVerdict {
	SpinKind kind = SpinKind::None;
	NoSpinReason reason = NoSpinReason::NoLoop;
	// The cycle found (for a spin, or for the first non-spin cycle): the lowest address of its
	// instructions and the end of the highest one, and its length in instructions.
	uint64_t loopLow = 0;
	uint64_t loopEnd = 0;
	unsigned instructions = 0;

	bool spin() const { return kind != SpinKind::None; }
	bool inLoop(uint64_t rip) const { return instructions > 0 && rip >= loopLow && rip < loopEnd; }
};

SpinVerdict classifyCode(const CodeWindow &window);

// Copies the window [rip - kCodeBytesBefore, rip + kCodeBytesAfter) into buffer through the
// guest page tables. Pages before or after RIP's that are not mapped are left out (the window
// shrinks); RIP's own byte must be mapped, else the walker's error.
Result<CodeWindow> readCodeWindow(const GuestPageWalker &walker, uint64_t rip,
				  std::span<uint8_t, kCodeWindowBytes> buffer);

// readCodeWindow then classifyCode; a failed read is NoSpinReason::Unmapped, never an error.
SpinVerdict classifyAt(const GuestPageWalker &walker, uint64_t rip);

} // namespace spindle::sched::sampling
