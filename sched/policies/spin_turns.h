#pragma once

#include <cstdint>
#include <vector>

namespace spindle::sched {

class SchedCore;

// Adaptive's turns (sched/README.md, "Adaptive's rules", rule 4). Each VM that spins has the
// pool to itself in its turn, as under gang; every VM that does not spin shares one more turn
// with the others like it, under plain CFS (nobody boosted, the spinning VMs SCHED_IDLE). The
// shared turn lasts a quantum per pool's width of its ready vCPUs, so each of those vCPUs gets
// what it would get from CFS across the whole rotation: a spinning VM is exactly as wide as the
// pool, so in a rotation of S spinning VMs and R vCPUs sharing, a spinning VM's vCPU gets
// P / (S P + R) of a CPU and so does a sharing one.
//
// Why not one turn per VM, as gang: a VM narrower than the pool left the rest of the pool to
// the waiting VMs' SCHED_IDLE threads in its turn (a half-run spinning VM there is holder
// preemption again), and every quiet VM got one quantum whatever its width, so a rotation of
// one 2-vCPU lock VM, two 1-vCPU VMs and a 2-vCPU co-runner on 2 CPUs gave the co-runner a
// quarter of the turns against a third of the pool owed (measured: 0.94 of its share in 3 s
// runs; 0.96-0.98 with the shared turn, BENCHMARKS.md).
class SpinTurns
{
public:
	// One tick while turns run; spinning[vm] says whether the VM gets turns of its own (a VM
	// beyond the vector's end does not).
	void onTick(SchedCore &core, const std::vector<bool> &spinning);
	// Turns stop for a while (between phases): whose turn it was is kept, so the next phase
	// starts with the one after it (starting from the first VM again gave the first VMs every
	// short phase's first turn: a cpu-bound co-runner, the last VM, kept 0.68-0.85 of its share
	// at 4x).
	void pause();

	// Whose turn it is: a VM id, kShared, or kNobody.
	static constexpr int kShared = -2, kNobody = -1;
	int current() const { return current_; }
	// When the current turn ends; 0 while there is none.
	uint64_t endsNs() const { return current_ == kNobody ? 0 : turnEndsNs_; }

private:
	// The next turn after the current one: spinning VMs in id order, then the shared turn.
	int nextTurn(const SchedCore &core, const std::vector<bool> &spinning) const;
	void countHoles(SchedCore &core, const std::vector<bool> &spinning, uint64_t nowNs);
	// A spinning VM with no vCPU ready keeps its turn unless none has been ready for a quantum:
	// a sleepy VM's vCPUs wake within their idle phase, and with its turn given away they waited
	// as SCHED_IDLE through the other VM's (measured, PVM ring 3, 2x sleepy pvticket: 476k ops/s
	// summed against gang's 498k; 492k keeping the turn). One idle for a quantum has nothing to
	// run, and its turn would be all hole.
	static bool wantsOwnTurn(const SchedCore &core, int vm);
	static bool spins(const std::vector<bool> &spinning, int vm);

	int current_ = kNobody;
	int lastServed_ = kNobody; // kept across pause(); kNobody: the rotation starts at VM 0
	uint64_t turnEndsNs_ = 0;
	uint64_t lastTickNs_ = 0;
};

} // namespace spindle::sched
