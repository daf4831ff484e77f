#include "sched/pid_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

using spindle::sched::PidTable;

TEST(PidTable, FindsWhatWasInserted)
{
	PidTable<int> table;

	*table.insert(4242) = 7;

	ASSERT_NE(table.find(4242), nullptr);
	EXPECT_EQ(*table.find(4242), 7);
	EXPECT_EQ(table.size(), 1u);
}

TEST(PidTable, DoesNotFindAThreadNeverInserted)
{
	PidTable<int> table;
	*table.insert(100) = 1;

	EXPECT_EQ(table.find(101), nullptr);
}

TEST(PidTable, InsertOfAKnownThreadKeepsItsValue)
{
	PidTable<int> table;
	*table.insert(9) = 3;

	int *again = table.insert(9);

	EXPECT_EQ(*again, 3);
	EXPECT_EQ(table.size(), 1u);
}

TEST(PidTable, RefusesIdsThatAreNoThread)
{
	PidTable<int> table;

	EXPECT_EQ(table.insert(0), nullptr);  // the idle task
	EXPECT_EQ(table.insert(-5), nullptr); // a garbled record
	EXPECT_EQ(table.find(0), nullptr);
	EXPECT_EQ(table.size(), 0u);
}

TEST(PidTable, EraseLeavesTheOthersFindable)
{
	// Consecutive ids, as a VM's vCPU threads have, and enough of them to collide and grow.
	PidTable<int> table;
	for (pid_t tid = 1000; tid < 1300; ++tid)
		*table.insert(tid) = tid * 2;

	for (pid_t tid = 1000; tid < 1300; tid += 3)
		table.erase(tid);

	for (pid_t tid = 1000; tid < 1300; ++tid) {
		if ((tid - 1000) % 3 == 0) {
			EXPECT_EQ(table.find(tid), nullptr) << tid;
		} else {
			ASSERT_NE(table.find(tid), nullptr) << tid;
			EXPECT_EQ(*table.find(tid), tid * 2) << tid;
		}
	}
	EXPECT_EQ(table.size(), 200u);
}

TEST(PidTable, EraseOfAnUnknownThreadChangesNothing)
{
	PidTable<int> table;
	*table.insert(5) = 1;

	table.erase(6);
	table.erase(0);

	EXPECT_EQ(table.size(), 1u);
	EXPECT_NE(table.find(5), nullptr);
}

TEST(PidTable, AgreesWithAMapUnderRandomInsertsAndErases)
{
	// Backward-shift erasure is the subtle part: a wrong shift loses entries later in a run.
	PidTable<int> table;
	std::map<pid_t, int> reference;
	std::mt19937 random(17);
	std::uniform_int_distribution<pid_t> tids(1, 600);

	for (int step = 0; step < 20'000; ++step) {
		const pid_t tid = tids(random);
		if (random() % 3 == 0) {
			table.erase(tid);
			reference.erase(tid);
		} else {
			*table.insert(tid) = step;
			reference[tid] = step;
		}
	}

	EXPECT_EQ(table.size(), reference.size());
	for (pid_t tid = 1; tid <= 600; ++tid) {
		auto want = reference.find(tid);
		const int *got = table.find(tid);
		if (want == reference.end()) {
			EXPECT_EQ(got, nullptr) << tid;
			continue;
		}
		ASSERT_NE(got, nullptr) << tid;
		EXPECT_EQ(*got, want->second) << tid;
	}
}
