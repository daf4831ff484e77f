// The length decoder against objdump's instruction boundaries in the recorded lockbench code,
// and the facts the classifier relies on, one encoding at a time.

#include "sched/sampling/x86_decoder.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/sched/sampling/lockbench_code.h"

namespace spindle::sched::sampling {
namespace {

std::optional<Instruction> decode(std::vector<uint8_t> bytes, uint64_t address = 0x1000)
{
	return decodeInstruction(bytes, address);
}

// Decodes straight through [from, to) of the main fixture; returns the instruction addresses.
std::vector<uint64_t> linearAddresses(uint64_t from, uint64_t to)
{
	std::span<const uint8_t> code(fixtures::kLockbenchMain);
	std::vector<uint64_t> out;
	for (uint64_t at = from; at < to;) {
		auto insn = decodeInstruction(code.subspan(at - fixtures::kLockbenchMainBase), at);
		if (!insn)
			break;
		out.push_back(at);
		at += insn->length;
	}
	return out;
}

TEST(X86Decoder, QspinCodeDecodesOnObjdumpsInstructionBoundaries)
{
	// From the disassembly in lockbench_code.h, 0x201e34 .. 0x201e9c.
	std::vector<uint64_t> expected = {0x201e34, 0x201e36, 0x201e39, 0x201e3b, 0x201e3f, 0x201e41, 0x201e43,
					  0x201e49, 0x201e4b, 0x201e4d, 0x201e56, 0x201e58, 0x201e5f, 0x201e62,
					  0x201e64, 0x201e67, 0x201e70, 0x201e76, 0x201e78, 0x201e7a, 0x201e7d,
					  0x201e80, 0x201e82, 0x201e89, 0x201e8e, 0x201e94, 0x201e96, 0x201e9a};

	EXPECT_EQ(linearAddresses(0x201e34, 0x201e9c), expected);
}

TEST(X86Decoder, TtasCodeDecodesOnObjdumpsInstructionBoundaries)
{
	std::vector<uint64_t> expected = {0x201ea2, 0x201ea8, 0x201eaa, 0x201eac, 0x201eb5, 0x201eb8, 0x201ebb,
					  0x201ec1, 0x201ec3, 0x201ec6, 0x201ec9, 0x201ecb, 0x201ecf, 0x201ed4,
					  0x201edb, 0x201edd, 0x201ee0, 0x201ee2, 0x201ee8, 0x201eea, 0x201eee};

	EXPECT_EQ(linearAddresses(0x201ea2, 0x201ef0), expected);
}

TEST(X86Decoder, PauseIsFlagged)
{
	auto insn = decode({0xf3, 0x90});

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->length, 2);
	EXPECT_TRUE(insn->pause);
}

TEST(X86Decoder, PlainNopIsNotPause)
{
	auto insn = decode({0x90});

	ASSERT_TRUE(insn);
	EXPECT_FALSE(insn->pause);
}

TEST(X86Decoder, XchgWithMemoryIsAnAtomicReadModifyWrite)
{
	auto insn = decode({0x87, 0x15, 0xfc, 0x9a, 0x00, 0x00}); // xchg %edx,0x9afc(%rip)

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->length, 6);
	EXPECT_TRUE(insn->readsMemory && insn->writesMemory && insn->atomic);
	EXPECT_EQ(insn->addressRegs, 0); // RIP-relative
	EXPECT_EQ(insn->regsWritten, regBit(kRdx));
}

TEST(X86Decoder, LockCmpxchgIsAtomicAndWritesRaxAndFlags)
{
	auto insn = decode({0xf0, 0x44, 0x0f, 0xb1, 0x15, 0x0f, 0x97, 0x00, 0x00}); // lock cmpxchg %r10d,..(%rip)

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->length, 9);
	EXPECT_TRUE(insn->atomic && insn->writesFlags);
	EXPECT_TRUE(insn->regsRead & regBit(10));
	EXPECT_TRUE(insn->regsWritten & regBit(kRax));
}

TEST(X86Decoder, PlainStoreIsNotAtomic)
{
	auto insn = decode({0x89, 0x43, 0x0c}); // mov %eax,0xc(%rbx)

	ASSERT_TRUE(insn);
	EXPECT_TRUE(insn->writesMemory);
	EXPECT_FALSE(insn->atomic);
	EXPECT_EQ(insn->addressRegs, regBit(kRbx));
}

TEST(X86Decoder, SibAddressNamesBaseAndIndex)
{
	auto insn = decode({0x41, 0x8b, 0x14, 0x86}); // mov (%r14,%rax,4),%edx

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->length, 4);
	EXPECT_EQ(insn->addressRegs, regBit(14) | regBit(kRax));
	EXPECT_EQ(insn->regsWritten, regBit(kRdx));
}

TEST(X86Decoder, MovabsTakesAnEightByteImmediate)
{
	auto insn = decode({0x49, 0xb8, 0x2d, 0x7f, 0x95, 0x4c, 0x2d, 0xf4, 0x51, 0x58}); // movabs $..,%r8

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->length, 10);
	EXPECT_EQ(insn->regsWritten, regBit(8));
}

TEST(X86Decoder, XorOfARegisterWithItselfReadsNothing)
{
	auto insn = decode({0x31, 0xc0}); // xor %eax,%eax

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->regsRead, 0);
	EXPECT_EQ(insn->regsWritten, regBit(kRax));
}

TEST(X86Decoder, ShortBackwardBranchTargetIsAbsolute)
{
	auto insn = decode({0x75, 0xf6}, 0x201ce2 - 8); // jne -10

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->flow, Flow::Branch);
	EXPECT_EQ(insn->target, 0x201ce2 - 8 + 2 - 10);
}

TEST(X86Decoder, NearBranchTakesAFourByteDisplacement)
{
	auto insn = decode({0x0f, 0x85, 0x7a, 0xff, 0xff, 0xff}, 0x2025e0); // jne 202560

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->length, 6);
	EXPECT_EQ(insn->target, 0x202560u);
}

TEST(X86Decoder, CallAndReturnEndThePath)
{
	auto call = decode({0xe8, 0x41, 0xdf, 0xff, 0xff});
	auto ret = decode({0xc3});
	auto indirect = decode({0xff, 0xe0}); // jmp *%rax

	ASSERT_TRUE(call && ret && indirect);
	EXPECT_EQ(call->flow, Flow::Call);
	EXPECT_EQ(ret->flow, Flow::Return);
	EXPECT_EQ(indirect->flow, Flow::Indirect);
}

TEST(X86Decoder, SyscallAndHltStop)
{
	auto syscall = decode({0x0f, 0x05});
	auto hlt = decode({0xf4});

	ASSERT_TRUE(syscall && hlt);
	EXPECT_EQ(syscall->flow, Flow::Stop);
	EXPECT_EQ(hlt->flow, Flow::Stop);
}

TEST(X86Decoder, EndbrIsAHintNop)
{
	auto insn = decode({0xf3, 0x0f, 0x1e, 0xfa});

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->length, 4);
	EXPECT_EQ(insn->flow, Flow::Next);
	EXPECT_FALSE(insn->readsMemory);
}

TEST(X86Decoder, TruncatedInstructionFails)
{
	EXPECT_FALSE(decode({0x0f, 0x85, 0x7a}));
	EXPECT_FALSE(decode({}));
}

TEST(X86Decoder, SixteenByteInstructionFails)
{
	std::vector<uint8_t> bytes(15, 0x66);
	bytes.push_back(0x90);

	EXPECT_FALSE(decode(bytes));
}

TEST(X86Decoder, FifteenByteInstructionDecodes)
{
	std::vector<uint8_t> bytes(14, 0x66);
	bytes.push_back(0x90);

	auto insn = decode(bytes);

	ASSERT_TRUE(insn);
	EXPECT_EQ(insn->length, 15);
}

TEST(X86Decoder, SseAndVexAreNotDecoded)
{
	EXPECT_FALSE(decode({0x0f, 0x28, 0xc1}));       // movaps %xmm1,%xmm0
	EXPECT_FALSE(decode({0xc5, 0xf9, 0xef, 0xc0})); // vpxor
	EXPECT_FALSE(decode({0xa5}));                   // movsl
}

} // namespace
} // namespace spindle::sched::sampling
