// GuestPageWalker: translation through 4 KiB, 2 MiB and 1 GiB pages, reads across pages, and a
// hostile guest's tables (outside RAM, reserved bits, not present, loops) failing cleanly.

#include "sched/sampling/guest_page_walk.h"

#include <gtest/gtest.h>

#include <array>

#include "tests/unit/sched/sampling/test_guest.h"

namespace spindle::sched::sampling {
namespace {

using test::TestGuest;
constexpr uint64_t kMiB = 1ull << 20;

TEST(GuestPageWalk, IdentityMapOf2MiBPagesTranslatesToTheSameAddress)
{
	TestGuest guest(8 * kMiB);
	guest.identityMap2M();

	auto t = guest.walker().translate(0x201cd5);

	ASSERT_TRUE(t) << t.error().message();
	EXPECT_EQ(t->gpa, 0x201cd5u);
	EXPECT_EQ(t->pageSize, paging::k2M);
	EXPECT_TRUE(t->user && t->writable && t->executable);
}

TEST(GuestPageWalk, FourKiBPageTranslatesToWhereverTheGuestPutIt)
{
	TestGuest guest(4 * kMiB);
	guest.map4K(0x7fff'1234'5000, 0x30'0000);

	auto t = guest.walker().translate(0x7fff'1234'5abc);

	ASSERT_TRUE(t) << t.error().message();
	EXPECT_EQ(t->gpa, 0x30'0abcu);
	EXPECT_EQ(t->pageSize, paging::k4K);
}

TEST(GuestPageWalk, OneGiBPageTranslatesWithItsOffset)
{
	TestGuest guest(4 * kMiB);
	guest.map1G(0xffff'8000'0000'0000, 0);

	auto t = guest.walker().translate(0xffff'8000'0012'3456);

	ASSERT_TRUE(t) << t.error().message();
	EXPECT_EQ(t->gpa, 0x12'3456u);
	EXPECT_EQ(t->pageSize, paging::k1G);
}

TEST(GuestPageWalk, OneGiBPageWhoseTargetLeavesRamFailsForAddressesBeyondRam)
{
	TestGuest guest(4 * kMiB);
	guest.map1G(0x4000'0000, 0);

	auto t = guest.walker().translate(0x4000'0000 + 5 * kMiB);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, ReadCrossesIntoAPageThatIsNotAdjacentInGuestPhysicalMemory)
{
	TestGuest guest(4 * kMiB);
	guest.map4K(0x40'0000, 0x20'0000);
	guest.map4K(0x40'1000, 0x10'0000); // the next virtual page lies *below* the first
	guest.bytes()[0x20'0ffe] = 0xaa;
	guest.bytes()[0x20'0fff] = 0xbb;
	guest.bytes()[0x10'0000] = 0xcc;
	guest.bytes()[0x10'0001] = 0xdd;
	std::array<uint8_t, 4> out{};

	auto s = guest.walker().read(0x40'0ffe, out);

	ASSERT_TRUE(s) << s.error().message();
	EXPECT_EQ(out, (std::array<uint8_t, 4>{0xaa, 0xbb, 0xcc, 0xdd}));
}

TEST(GuestPageWalk, ReadFailsWhenTheSecondPageIsNotMapped)
{
	TestGuest guest(4 * kMiB);
	guest.map4K(0x40'0000, 0x20'0000);
	std::array<uint8_t, 4> out{};

	auto s = guest.walker().read(0x40'0ffe, out);

	EXPECT_FALSE(s);
}

TEST(GuestPageWalk, NotPresentEntryFails)
{
	TestGuest guest(4 * kMiB);
	guest.map4K(0x40'0000, 0x20'0000, paging::kWritable | paging::kUser); // no present bit

	auto t = guest.walker().translate(0x40'0000);

	ASSERT_FALSE(t);
	EXPECT_NE(t.error().message().find("not mapped"), std::string::npos) << t.error().message();
}

TEST(GuestPageWalk, Cr3OutsideRamFailsWithoutReading)
{
	TestGuest guest(4 * kMiB);
	auto regs = guest.regs();
	regs.cr3 = 0x000f'ffff'ffff'f000;

	auto t = GuestPageWalker(guest.ram(), regs).translate(0x1000);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, TableEntryPointingOutsideRamFails)
{
	TestGuest guest(4 * kMiB);
	guest.map4K(0x40'0000, 0x20'0000);
	guest.put64(guest.entryGpa(0x40'0000, 2), 0x0000'7fff'ffff'f000 | TestGuest::kTableFlags);

	auto t = guest.walker().translate(0x40'0000);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, TableAtTheLastPageOfRamIsReadButNotPastIt)
{
	TestGuest guest(4 * kMiB, 4 * kMiB); // tables at the very top of RAM
	guest.map4K(0x1ff000, 0x1000);

	auto t = guest.walker().translate(0x1ff010);

	ASSERT_TRUE(t) << t.error().message();
	EXPECT_EQ(t->gpa, 0x1010u);
}

TEST(GuestPageWalk, PageTargetOutsideRamFails)
{
	TestGuest guest(4 * kMiB);
	guest.map4K(0x40'0000, 64 * kMiB);

	auto t = guest.walker().translate(0x40'0000);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, TableInTheMmioHoleFails)
{
	TestGuest guest(4 * kMiB); // tables just below 1 MiB, inside [0xa0000, 0x100000)
	guest.map4K(0x40'0000, 0x20'0000);
	GuestRam ram = guest.ram();
	ram.holeStart = 0xa0000;
	ram.holeEnd = 0x100000;

	auto t = GuestPageWalker(ram, guest.regs()).translate(0x40'0000);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, PageSizeBitInPml4EntryIsReservedAndFails)
{
	TestGuest guest(4 * kMiB);
	guest.put64(guest.entryGpa(0, 4), 0 | TestGuest::kPageFlags | paging::kLargePage);

	auto t = guest.walker().translate(0x1000);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, ReservedBitsInA2MiBEntryFail)
{
	TestGuest guest(4 * kMiB);
	guest.map2M(0x20'0000, 0x20'0000 | 0x2000); // bit 13 lies in the reserved 20:13 range

	auto t = guest.walker().translate(0x20'0000);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, NoExecuteBitWithoutEferNxeIsReservedAndFails)
{
	TestGuest guest(4 * kMiB);
	guest.map4K(0x40'0000, 0x20'0000, TestGuest::kPageFlags | paging::kNoExecute);
	auto regs = guest.regs();
	regs.efer &= ~paging::kEferNxe;

	auto t = GuestPageWalker(guest.ram(), regs).translate(0x40'0000);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, NoExecuteBitWithEferNxeMakesThePageNotExecutable)
{
	TestGuest guest(4 * kMiB);
	guest.map4K(0x40'0000, 0x20'0000, TestGuest::kPageFlags | paging::kNoExecute);

	auto t = guest.walker().translate(0x40'0000);

	ASSERT_TRUE(t) << t.error().message();
	EXPECT_FALSE(t->executable);
}

TEST(GuestPageWalk, SelfReferencingPml4TerminatesAfterFourLevels)
{
	// A recursive slot: PML4[0] points at the PML4 itself, so every level reads the same table.
	TestGuest guest(4 * kMiB);
	guest.put64(guest.cr3(), guest.cr3() | TestGuest::kTableFlags);

	auto t = guest.walker().translate(0);

	ASSERT_TRUE(t) << t.error().message();
	EXPECT_EQ(t->gpa, guest.cr3()); // the leaf is the PML4 page itself, as on the CPU
}

TEST(GuestPageWalk, NonCanonicalAddressFails)
{
	TestGuest guest(4 * kMiB);
	guest.identityMap2M();

	auto t = guest.walker().translate(0x0000'8000'0000'0000);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, FiveLevelPagingIsRefused)
{
	TestGuest guest(4 * kMiB);
	auto regs = guest.regs();
	regs.cr4 |= paging::kCr4La57;

	auto t = GuestPageWalker(guest.ram(), regs).translate(0);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, LegacyThirtyTwoBitPagingIsRefused)
{
	TestGuest guest(4 * kMiB);
	auto regs = guest.regs();
	regs.efer = 0;

	auto t = GuestPageWalker(guest.ram(), regs).translate(0);

	EXPECT_FALSE(t);
}

TEST(GuestPageWalk, PagingOffMeansPhysicalAddressesWithinRam)
{
	TestGuest guest(4 * kMiB);
	PagingRegisters regs{};

	auto inside = GuestPageWalker(guest.ram(), regs).translate(0x3000);
	auto outside = GuestPageWalker(guest.ram(), regs).translate(5 * kMiB);

	ASSERT_TRUE(inside);
	EXPECT_EQ(inside->gpa, 0x3000u);
	EXPECT_FALSE(outside);
}

TEST(GuestPageWalk, RandomTablesNeverReadOutsideRam)
{
	// Fill a small RAM with noise, tables included, and walk many addresses: every answer is a
	// clean error or a GPA inside RAM (AddressSanitizer builds would flag any stray read).
	TestGuest guest(1 * kMiB, 1 * kMiB);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	auto next = [&x] { return x = x * 6364136223846793005ull + 1442695040888963407ull; };
	for (size_t i = 0; i + 8 <= guest.bytes().size(); i += 8) {
		uint64_t r = next();
		// Mostly addresses inside the 1 MiB with the present bit, so walks go deep before they
		// fail; every third one anywhere in the 52-bit physical space.
		uint64_t address = (r >> 8) & (i % 24 ? 0xff000ull : 0xf'ffff'ffff'f000ull);
		guest.put64(i, address | (r & 0x8000'0000'0000'0087ull) | paging::kPresent);
	}
	GuestPageWalker walker = guest.walker();
	unsigned translated = 0;

	for (int i = 0; i < 20000; i++) {
		auto t = walker.translate(next() & 0x0000'7fff'ffff'ffffull);
		if (t) {
			translated++;
			EXPECT_LT(t->gpa, guest.bytes().size());
		}
	}

	EXPECT_GT(translated, 0u); // the noise did produce real walks, not only first-level failures
}

} // namespace
} // namespace spindle::sched::sampling
