// The instruction-bytes classifier on the real wait loops of every bundled lock, on the loops of
// lockbench that are not waits, on hand-assembled loops of both kinds, and on hostile input.
//
// The lockbench fixtures are lockbench_code.h: the bytes of build/guest-kernels/lockbench.elf's
// code segment as loaded (record_fixtures.py), with the loops' disassembly in comments. The
// RIPs below are every instruction of each wait loop as objdump -d lists it; each is looked up
// exactly as the detector will: through the page tables of a guest that has the code at its
// linked address, with the standard code window around the RIP.

#include "sched/sampling/spin_classifier.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/sched/sampling/lockbench_code.h"
#include "tests/unit/sched/sampling/test_guest.h"

namespace spindle::sched::sampling {
namespace {

using test::TestGuest;

constexpr uint64_t kRam = 4ull << 20;

// Spindle's layout: identity map of 2 MiB pages, lockbench loaded at its link address.
class LockbenchCode : public ::testing::Test
{
protected:
	LockbenchCode() : guest_(kRam)
	{
		guest_.identityMap2M();
		guest_.put(fixtures::kLockbenchMainBase, fixtures::kLockbenchMain);
		guest_.put(fixtures::kLockbenchPvTicketBase, fixtures::kLockbenchPvTicket);
	}

	SpinVerdict at(uint64_t rip) { return classifyAt(guest_.walker(), rip); }

	// Every byte of [base, base + size) as a sampled RIP; the ones that classify as spins.
	std::vector<uint64_t> spinRips(uint64_t base, size_t size)
	{
		std::vector<uint64_t> out;
		for (uint64_t rip = base; rip < base + size; rip++)
			if (at(rip).spin())
				out.push_back(rip);
		return out;
	}

	// Every RIP classifies as `kind`; the failures name the RIP.
	void expectAll(const std::vector<uint64_t> &rips, SpinKind kind)
	{
		for (uint64_t rip : rips) {
			SpinVerdict v = at(rip);
			EXPECT_EQ(v.kind, kind) << "rip " << std::hex << rip << ": " << toString(v.reason);
		}
	}

	void expectNone(const std::vector<uint64_t> &rips, NoSpinReason reason)
	{
		for (uint64_t rip : rips) {
			SpinVerdict v = at(rip);
			EXPECT_FALSE(v.spin()) << "rip " << std::hex << rip;
			EXPECT_EQ(v.reason, reason) << "rip " << std::hex << rip << ": " << toString(v.reason);
		}
	}

	TestGuest guest_;
};

// BasicTicketLock<P, false>::acquire: load serving_, compare with our ticket, pause.
const std::vector<uint64_t> kTicketLoop = {0x201cd0, 0x201cd2, 0x201cd5, 0x201cdb, 0x201cdf, 0x201ce2};
// TasLock::acquire: pause, xchg the word, test, jne.
const std::vector<uint64_t> kTasLoop = {0x201ac2, 0x201ac4, 0x201ac8, 0x201aca, 0x201ad0, 0x201ad2};
// TtasLock::acquire while the word is held: load, test, jne out to pause, jmp back.
const std::vector<uint64_t> kTtasHeldLoop = {0x201ea2, 0x201ea8, 0x201eaa, 0x201ee2, 0x201ee8, 0x201eea, 0x201eee};
// TtasLock::acquire's backoff after a failed compare-and-swap: pause, count, compare, jne.
const std::vector<uint64_t> kTtasBackoffLoop = {0x201ec1, 0x201ec3, 0x201ec6, 0x201ec9};
// McsQueue::enqueueAndWaitForHead (mcs): pause, load node->locked, test, jne.
const std::vector<uint64_t> kMcsLoop = {0x201817, 0x201819, 0x20181c, 0x20181f, 0x201823, 0x201825};
// QspinLock: the same queue wait, inlined again, then the head's wait on the lock word.
const std::vector<uint64_t> kQspinQueueLoop = {0x201e34, 0x201e36, 0x201e39, 0x201e3b, 0x201e3f, 0x201e41};
const std::vector<uint64_t> kQspinHeadLoop = {0x201e43, 0x201e49, 0x201e4b, 0x201e8e, 0x201e94, 0x201e96, 0x201e9a};
// BasicTicketLock<P, true>::acquire (pvticket): the loop spans 134 bytes with the hint updates
// and the one-time notification off its steady path; these are the steady path's 15.
const std::vector<uint64_t> kPvTicketLoop = {0x2025c0, 0x2025c2, 0x2025c6, 0x2025ca, 0x2025cd,
					     0x2025cf, 0x2025d2, 0x2025d6, 0x2025da, 0x2025dd,
					     0x2025e0, 0x202560, 0x202563, 0x20257e, 0x202581};
// lockbench::workUnit (mode=cpu): imul, add, mov, shr, xor, sub, jne.
const std::vector<uint64_t> kWorkUnitLoop = {0x201470, 0x201474, 0x201477, 0x20147a, 0x20147e, 0x201481, 0x201484};
// busyUntil, the critical section's TSC loop: what a lock *holder*'s RIP looks like.
const std::vector<uint64_t> kBusyUntilLoop = {0x201ba0, 0x201ba2, 0x201ba6, 0x201ba8, 0x201bab, 0x201bae};

TEST_F(LockbenchCode, TicketWaitLoopIsAPauseLoopAtEveryInstruction) { expectAll(kTicketLoop, SpinKind::PauseLoop); }

TEST_F(LockbenchCode, TasWaitLoopIsAPauseLoopAtEveryInstruction) { expectAll(kTasLoop, SpinKind::PauseLoop); }

TEST_F(LockbenchCode, TtasHeldLoopIsAPauseLoopAtEveryInstruction) { expectAll(kTtasHeldLoop, SpinKind::PauseLoop); }

TEST_F(LockbenchCode, TtasBackoffLoopIsAPauseLoopAtEveryInstruction)
{
	expectAll(kTtasBackoffLoop, SpinKind::PauseLoop);
}

TEST_F(LockbenchCode, McsWaitLoopIsAPauseLoopAtEveryInstruction) { expectAll(kMcsLoop, SpinKind::PauseLoop); }

TEST_F(LockbenchCode, QspinQueueLoopIsAPauseLoopAtEveryInstruction) { expectAll(kQspinQueueLoop, SpinKind::PauseLoop); }

TEST_F(LockbenchCode, QspinHeadLoopIsAPauseLoopAtEveryInstruction) { expectAll(kQspinHeadLoop, SpinKind::PauseLoop); }

TEST_F(LockbenchCode, PvTicketWaitLoopIsAPauseLoopAtEveryInstruction) { expectAll(kPvTicketLoop, SpinKind::PauseLoop); }

TEST_F(LockbenchCode, WorkUnitComputeLoopIsNotASpin) { expectNone(kWorkUnitLoop, NoSpinReason::NoMemoryWait); }

TEST_F(LockbenchCode, CriticalSectionTscLoopIsNotASpin) { expectNone(kBusyUntilLoop, NoSpinReason::NoMemoryWait); }

// Every byte offset of the recorded code, instruction boundary or not, as a sampled RIP: the
// spins are exactly the wait loops' instructions (and the other paths of those loops), nothing
// in the compute, parsing, reporting or critical-section code around them.
TEST_F(LockbenchCode, OnlyTheWaitLoopsOfLockbenchsMainCodeAreSpins)
{
	std::vector<uint64_t> expected;
	for (const auto *loop : {&kMcsLoop, &kTasLoop})
		expected.insert(expected.end(), loop->begin(), loop->end());
	// McsQueue::passHead's wait for the successor to link itself (mcs release).
	expected.insert(expected.end(), {0x201bcc, 0x201bce, 0x201bd1, 0x201bd4});
	expected.insert(expected.end(), kTicketLoop.begin(), kTicketLoop.end());
	expected.insert(expected.end(), kQspinQueueLoop.begin(), kQspinQueueLoop.end());
	// The qspin head loop, with its compare-and-swap path (0x201e4d, 0x201e56), then passHead's
	// wait (0x201e78..), then the rest of the head loop (0x201e8e..).
	expected.insert(expected.end(), {0x201e43, 0x201e49, 0x201e4b, 0x201e4d, 0x201e56, 0x201e78, 0x201e7a,
					 0x201e7d, 0x201e80, 0x201e8e, 0x201e94, 0x201e96, 0x201e9a});
	// The whole ttas acquire loop: held loop, compare-and-swap, backoff, backoff doubling.
	expected.insert(expected.end(), {0x201ea2, 0x201ea8, 0x201eaa, 0x201eac, 0x201eb5, 0x201eb8, 0x201ebb,
					 0x201ec1, 0x201ec3, 0x201ec6, 0x201ec9, 0x201ecb, 0x201ecf, 0x201ed4,
					 0x201edb, 0x201edd, 0x201ee0, 0x201ee2, 0x201ee8, 0x201eea, 0x201eee});

	EXPECT_EQ(spinRips(fixtures::kLockbenchMainBase, sizeof(fixtures::kLockbenchMain)), expected);
}

TEST_F(LockbenchCode, OnlyThePvTicketWaitLoopIsASpinInItsFunction)
{
	// The steady path, plus the hint updates (0x202565..) and the threshold test (0x202583..)
	// that return into it; not the notification call (0x202590..) nor the code after the loop.
	std::vector<uint64_t> expected = {0x202560, 0x202563, 0x202565, 0x202568, 0x20256a, 0x20256e,
					  0x202571, 0x202574, 0x202576, 0x202579, 0x20257b, 0x20257e,
					  0x202581, 0x202583, 0x202586, 0x202588, 0x20258b, 0x20258e,
					  0x2025c0, 0x2025c2, 0x2025c6, 0x2025ca, 0x2025cd, 0x2025cf,
					  0x2025d2, 0x2025d6, 0x2025da, 0x2025dd, 0x2025e0};

	EXPECT_EQ(spinRips(fixtures::kLockbenchPvTicketBase, sizeof(fixtures::kLockbenchPvTicket)), expected);
}

TEST_F(LockbenchCode, TicketVerdictCoversTheLoopsBytes)
{
	SpinVerdict v = at(0x201cd5);

	EXPECT_EQ(v.loopLow, 0x201cd0u);
	EXPECT_EQ(v.loopEnd, 0x201ce4u);
	EXPECT_EQ(v.instructions, 6u);
}

TEST_F(LockbenchCode, UnmappedRipIsNotASpin)
{
	SpinVerdict v = at(kRam + 0x1000); // above RAM: the identity map stops at its end

	EXPECT_FALSE(v.spin());
	EXPECT_EQ(v.reason, NoSpinReason::Unmapped);
}

TEST_F(LockbenchCode, NonCanonicalRipIsNotASpin)
{
	SpinVerdict v = at(0x8000'0000'0000'0000ull);

	EXPECT_EQ(v.reason, NoSpinReason::Unmapped);
}

// The ticket loop's bytes in a guest that maps them through 4 KiB pages at another virtual
// address, split across a page boundary, with the two pages far apart and in reverse order.
TEST(SpinClassifierPaging, TicketLoopAcrossNonAdjacentFourKiBPagesIsStillAPauseLoop)
{
	TestGuest guest(kRam);
	constexpr uint64_t kVa = 0x7f00'0000'0000;
	const uint64_t loopOffset = 0x201cd0 - fixtures::kLockbenchMainBase;
	const uint64_t firstPart = 8; // the page boundary falls inside the loop, after 8 bytes
	const uint64_t start = kVa + 0x1000 - firstPart - loopOffset; // VA of the region's first byte
	std::span<const uint8_t> code(fixtures::kLockbenchMain);
	// Region bytes [0, split) go to the first virtual page, the rest to the second.
	const uint64_t split = loopOffset + firstPart;
	guest.map4K(kVa, 0x30'0000);
	guest.map4K(kVa + 0x1000, 0x20'0000);
	guest.put(0x30'0000 + 0x1000 - split, code.first(split));
	guest.put(0x20'0000, code.subspan(split));

	SpinVerdict v = classifyAt(guest.walker(), start + (0x201cdf - fixtures::kLockbenchMainBase));

	EXPECT_EQ(v.kind, SpinKind::PauseLoop) << toString(v.reason);
}

TEST(SpinClassifierPaging, UnmappedPageBeforeRipShrinksTheWindowButKeepsTheLoop)
{
	// The loop starts at a page's first byte and the page before it is not mapped.
	TestGuest guest(kRam);
	const uint64_t loopOffset = 0x201cd0 - fixtures::kLockbenchMainBase;
	std::span<const uint8_t> code(fixtures::kLockbenchMain);
	guest.map4K(0x50'0000, 0x20'0000);
	guest.put(0x20'0000, code.subspan(loopOffset, 0x100));
	std::array<uint8_t, kCodeWindowBytes> buffer;

	auto window = readCodeWindow(guest.walker(), 0x50'0005, buffer);
	SpinVerdict v = classifyAt(guest.walker(), 0x50'0005);

	ASSERT_TRUE(window) << window.error().message();
	EXPECT_EQ(window->base, 0x50'0000u);
	EXPECT_EQ(window->bytes.size(), kCodeBytesAfter + 5);
	EXPECT_EQ(v.kind, SpinKind::PauseLoop) << toString(v.reason);
}

// Found by fuzz-sampling: the end of the last page of the address space wrapped to 0, and the
// copy into the window's buffer was given a length of nearly 2^64.
TEST(SpinClassifierHostile, LoopInTheLastPageOfTheAddressSpaceStaysInsideTheBuffer)
{
	TestGuest guest(kRam);
	constexpr uint64_t kLastPage = 0xffff'ffff'ffff'f000;
	const uint64_t loopOffset = 0x201cd0 - fixtures::kLockbenchMainBase;
	std::span<const uint8_t> code(fixtures::kLockbenchMain);
	guest.map4K(kLastPage, 0x20'0000);
	guest.put(0x20'0000 + 0x100, code.subspan(loopOffset, 0x40));
	std::array<uint8_t, kCodeWindowBytes> buffer;

	auto window = readCodeWindow(guest.walker(), kLastPage + 0x105, buffer);
	SpinVerdict v = classifyAt(guest.walker(), kLastPage + 0x105);

	ASSERT_TRUE(window) << window.error().message();
	EXPECT_EQ(window->base, kLastPage + 0x105 - kCodeBytesBefore);
	EXPECT_EQ(window->bytes.size(), kCodeWindowBytes);
	EXPECT_EQ(v.kind, SpinKind::PauseLoop) << toString(v.reason);
}

TEST(SpinClassifierHostile, RipAtTheLastByteOfTheAddressSpaceIsUnmappedNotAWindow)
{
	TestGuest guest(kRam);
	guest.map4K(0xffff'ffff'ffff'f000, 0x20'0000);
	std::array<uint8_t, kCodeWindowBytes> buffer;

	auto window = readCodeWindow(guest.walker(), UINT64_MAX, buffer);
	SpinVerdict v = classifyAt(guest.walker(), UINT64_MAX);

	EXPECT_FALSE(window);
	EXPECT_EQ(v.reason, NoSpinReason::Unmapped);
}

// Hand-assembled loops (GNU as, bytes from objdump -d), placed at `base` in a window of their own.
SpinVerdict classify(std::vector<uint8_t> code, uint64_t ripOffset = 0)
{
	constexpr uint64_t kBase = 0x40'0000;
	code.resize(code.size() + 32, 0xcc); // int3 after the loop: nothing to fall into
	return classifyCode(CodeWindow{code, kBase, kBase + ripOffset});
}

TEST(SpinClassifierPollLoops, TicketPollWithoutPauseIsAPollLoop)
{
	// 1: mov 0x100(%rip),%eax; cmp %eax,%edx; jne 1b
	SpinVerdict v = classify({0x8b, 0x05, 0x00, 0x01, 0x00, 0x00, 0x39, 0xc2, 0x75, 0xf6}, 6);

	EXPECT_EQ(v.kind, SpinKind::PollLoop) << toString(v.reason);
}

TEST(SpinClassifierPollLoops, XchgLoopWithoutPauseIsAPollLoop)
{
	// 1: mov $1,%eax; xchg %eax,(%rdi); test %eax,%eax; jne 1b
	SpinVerdict v = classify({0xb8, 0x01, 0x00, 0x00, 0x00, 0x87, 0x07, 0x85, 0xc0, 0x75, 0xf5});

	EXPECT_EQ(v.kind, SpinKind::PollLoop) << toString(v.reason);
}

TEST(SpinClassifierPollLoops, LockCmpxchgRetryLoopIsAPollLoop)
{
	// 1: xor %eax,%eax; lock cmpxchg %edx,(%rdi); jne 1b
	SpinVerdict v = classify({0x31, 0xc0, 0xf0, 0x0f, 0xb1, 0x17, 0x75, 0xf8}, 2);

	EXPECT_EQ(v.kind, SpinKind::PollLoop) << toString(v.reason);
}

TEST(SpinClassifierPollLoops, PollWithAnIterationLimitIsAPollLoop)
{
	// 1: mov (%rdi),%eax; test %eax,%eax; jne 2f; dec %ecx; jne 1b; 2: nop
	SpinVerdict v = classify({0x8b, 0x07, 0x85, 0xc0, 0x75, 0x04, 0xff, 0xc9, 0x75, 0xf6, 0x90});

	EXPECT_EQ(v.kind, SpinKind::PollLoop) << toString(v.reason);
}

TEST(SpinClassifierNotSpins, CountingLoopWithoutLoadIsNotASpin)
{
	// 1: add $1,%rax; cmp %rdx,%rax; jb 1b
	SpinVerdict v = classify({0x48, 0x83, 0xc0, 0x01, 0x48, 0x39, 0xd0, 0x72, 0xf7});

	EXPECT_EQ(v.reason, NoSpinReason::NoMemoryWait);
}

TEST(SpinClassifierNotSpins, PointerChasingLoopIsNotASpin)
{
	// 1: mov (%rax),%rax; test %rax,%rax; jne 1b: the address moves every iteration
	SpinVerdict v = classify({0x48, 0x8b, 0x00, 0x48, 0x85, 0xc0, 0x75, 0xf8});

	EXPECT_EQ(v.reason, NoSpinReason::NoMemoryWait);
}

TEST(SpinClassifierNotSpins, CopyLoopIsNotASpin)
{
	// 1: mov (%rsi,%rcx),%al; mov %al,(%rdi,%rcx); inc %rcx; cmp %rdx,%rcx; jne 1b
	SpinVerdict v = classify({0x8a, 0x04, 0x0e, 0x88, 0x04, 0x0f, 0x48, 0xff, 0xc1, 0x48, 0x39, 0xd1, 0x75, 0xf2});

	EXPECT_EQ(v.reason, NoSpinReason::StoresToMemory);
}

TEST(SpinClassifierNotSpins, CountingUpToALimitLoadedFromMemoryIsNotASpin)
{
	// 1: inc %rax; cmp 0x200(%rip),%rax; jb 1b: the counter ends it, whatever memory does
	SpinVerdict v = classify({0x48, 0xff, 0xc0, 0x48, 0x3b, 0x05, 0x00, 0x02, 0x00, 0x00, 0x72, 0xf4});

	EXPECT_EQ(v.reason, NoSpinReason::NoMemoryWait);
}

TEST(SpinClassifierNotSpins, FlagTestInsideACountedLoopIsNotASpin)
{
	// 1: mov (%rdi),%eax; test %eax,%eax; je 2f; inc %rdx; 2: dec %ecx; jne 1b
	SpinVerdict v = classify({0x8b, 0x07, 0x85, 0xc0, 0x74, 0x03, 0x48, 0xff, 0xc2, 0xff, 0xc9, 0x75, 0xf3, 0x90});

	EXPECT_EQ(v.reason, NoSpinReason::NoMemoryWait);
}

TEST(SpinClassifierNotSpins, LoopThroughACallIsNotALoopWeCanSee)
{
	// 1: call f; test %eax,%eax; je 1b
	SpinVerdict v = classify({0xe8, 0x00, 0x01, 0x00, 0x00, 0x85, 0xc0, 0x74, 0xf7}, 5);

	EXPECT_EQ(v.reason, NoSpinReason::NoLoop);
}

TEST(SpinClassifierNotSpins, StraightLineCodeIsNotALoop)
{
	// mov %rdi,%rax; add $8,%rax; ret
	SpinVerdict v = classify({0x48, 0x89, 0xf8, 0x48, 0x83, 0xc0, 0x08, 0xc3});

	EXPECT_EQ(v.reason, NoSpinReason::NoLoop);
}

TEST(SpinClassifierHostile, VexEncodedInstructionAtRipIsUndecodable)
{
	// vpxor %xmm0,%xmm0,%xmm0
	SpinVerdict v = classify({0xc5, 0xf9, 0xef, 0xc0});

	EXPECT_EQ(v.reason, NoSpinReason::Undecodable);
}

TEST(SpinClassifierHostile, RipOutsideTheWindowIsRefused)
{
	std::vector<uint8_t> code(16, 0x90);

	SpinVerdict v = classifyCode(CodeWindow{code, 0x1000, 0x2000});

	EXPECT_EQ(v.reason, NoSpinReason::RipOutsideWindow);
}

TEST(SpinClassifierHostile, InstructionRunningPastTheWindowEndIsUndecodable)
{
	// The first 3 bytes of a 6-byte mov 0x100(%rip),%eax, and nothing after them.
	std::vector<uint8_t> code = {0x8b, 0x05, 0x00};

	SpinVerdict v = classifyCode(CodeWindow{code, 0x1000, 0x1000});

	EXPECT_EQ(v.reason, NoSpinReason::Undecodable);
}

TEST(SpinClassifierHostile, PrefixFloodLongerThanFifteenBytesIsUndecodable)
{
	std::vector<uint8_t> code(16, 0x66);
	code.push_back(0x90);

	SpinVerdict v = classifyCode(CodeWindow{code, 0x1000, 0x1000});

	EXPECT_EQ(v.reason, NoSpinReason::Undecodable);
}

TEST(SpinClassifierHostile, BranchMazeIsBoundedAndNotASpin)
{
	// 1: je 1f+... : a window full of forward jcc rel8 +0 (74 00): 2^n paths, none back to RIP.
	std::vector<uint8_t> code;
	for (int i = 0; i < 150; i++)
		code.insert(code.end(), {0x74, 0x00});

	SpinVerdict v = classifyCode(CodeWindow{code, 0x1000, 0x1000});

	EXPECT_FALSE(v.spin());
}

TEST(SpinClassifierHostile, RandomBytesAreAlmostNeverSpins)
{
	// Many windows of noise, RIP in the middle: decoding stays in bounds (sanitizer builds would
	// say otherwise), and a spin verdict needs a real short cycle back onto RIP, which noise
	// rarely forms. The one these 3000 windows hold (round 1875) is a genuine poll loop:
	// xchg %eax,%esp; jo out; stc; xchg %dh,m1; cmp m2,%bh; jrcxz back: it leaves only when m2
	// changes, so calling it a spin is right.
	uint64_t x = 12345;
	std::vector<uint8_t> code(kCodeWindowBytes);
	unsigned spins = 0;

	for (int round = 0; round < 3000; round++) {
		for (uint8_t &b : code) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			b = static_cast<uint8_t>(x >> 56);
		}
		spins += classifyCode(CodeWindow{code, 0x10000, 0x10000 + kCodeBytesBefore}).spin();
	}

	EXPECT_LE(spins, 1u);
}

TEST(SpinClassifierHostile, AllZeroPageIsNotASpin)
{
	std::vector<uint8_t> code(kCodeWindowBytes, 0); // add %al,(%rax) over and over

	SpinVerdict v = classifyCode(CodeWindow{code, 0x10000, 0x10000 + kCodeBytesBefore});

	EXPECT_FALSE(v.spin());
}

} // namespace
} // namespace spindle::sched::sampling
