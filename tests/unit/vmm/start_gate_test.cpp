// StartGate: every vCPU thread of a session waits on it before its first KVM_RUN.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "vmm/runtime/machine.h"

using namespace spindle;

TEST(StartGate, WaitersStayUntilTheGateOpens)
{
	StartGate gate;
	std::atomic<int> passed{0};
	std::thread a([&] { gate.wait(); passed++; });
	std::thread b([&] { gate.wait(); passed++; });

	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	const int beforeOpen = passed.load();
	gate.open();
	a.join();
	b.join();

	EXPECT_EQ(beforeOpen, 0);
	EXPECT_EQ(passed.load(), 2);
}

TEST(StartGate, OpensWhenTheLastExpectedThreadArrives)
{
	StartGate gate;
	gate.expect(2);
	std::atomic<int> passed{0};
	std::thread first([&] { gate.arriveAndWait(); passed++; });

	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	const bool openWithOne = gate.isOpen();
	const int passedWithOne = passed.load();
	std::thread last([&] { gate.arriveAndWait(); passed++; });
	first.join();
	last.join();

	EXPECT_FALSE(openWithOne);
	EXPECT_EQ(passedWithOne, 0);
	EXPECT_EQ(passed.load(), 2);
	EXPECT_TRUE(gate.isOpen());
}

TEST(StartGate, WaitAfterOpenReturnsAtOnce)
{
	StartGate gate;
	gate.open();

	gate.wait();

	EXPECT_TRUE(gate.isOpen());
}
