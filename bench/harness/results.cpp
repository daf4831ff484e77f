#include "bench/harness/results.h"

#include <algorithm>
#include <numeric>

#include "bench/harness/host_steal.h"

namespace spindle::bench {

namespace {

std::optional<double> mean(const std::vector<double> &values)
{
	if (values.empty())
		return std::nullopt;
	return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

// What a VM's lock throughput is, for the "ops/s per VM" column: the mean over the run's lock
// VMs (ops/s of a barrier or cpu VM are other units), or over all of them when none is a lock VM
// (a barrier or cpu VM alone).
std::optional<double> meanLockOps(const RunRecord &record)
{
	std::vector<double> lock, all;
	for (size_t i = 0; i < record.vmOps.size() && i < record.plan.vms.size(); ++i) {
		all.push_back(record.vmOps[i]);
		if (record.plan.vms[i].role == VmRole::Lock)
			lock.push_back(record.vmOps[i]);
	}
	return mean(lock.empty() ? all : lock);
}

// The alone runs of one scenario, template and PLE setting.
struct AloneSamples {
	std::string scenario;
	VmTemplate vm;
	bool pauseExits = true;
	std::vector<double> ops;
};

// cpu VMs never execute PAUSE, so they have only PLE-on alone runs (expandMatrix).
bool aloneKeyPle(const VmTemplate &vm, bool pauseExits)
{
	return vm.role == VmRole::Cpu || pauseExits;
}

std::optional<double> aloneMedian(const std::vector<AloneSamples> &alone, const std::string &scenario,
				  const VmTemplate &vm, bool pauseExits)
{
	const bool ple = aloneKeyPle(vm, pauseExits);
	for (const AloneSamples &samples : alone) {
		if (samples.scenario == scenario && samples.pauseExits == ple && samples.vm == vm)
			return median(samples.ops);
	}
	return std::nullopt;
}

} // namespace

std::string cpuModelFromCpuinfo(std::string_view cpuinfo)
{
	size_t pos = 0;
	while (pos < cpuinfo.size()) {
		size_t end = cpuinfo.find('\n', pos);
		if (end == std::string_view::npos)
			end = cpuinfo.size();
		std::string_view line = cpuinfo.substr(pos, end - pos);
		pos = end + 1;
		if (!line.starts_with("model name"))
			continue;
		size_t colon = line.find(':');
		if (colon == std::string_view::npos)
			continue;
		std::string_view value = line.substr(colon + 1);
		while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
			value.remove_prefix(1);
		while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
			value.remove_suffix(1);
		return std::string(value);
	}
	return "";
}

std::string hostKind(std::string_view emulatedEnv, std::string_view cmdline, std::string_view cpuModel)
{
	// tests/kvm-host exports SPINDLE_EMULATED_HOST=1 and puts its nonce on the kernel command
	// line; either one is enough (a command may clear its environment).
	if (emulatedEnv == "1" || cmdline.find("SPINDLE_HOST_NONCE=") != std::string_view::npos)
		return "emulated";
	// QEMU's own CPU models: some other QEMU guest with KVM inside (nested or TCG), not hardware.
	if (cpuModel.find("QEMU") != std::string_view::npos)
		return "kvm-in-qemu";
	return "kvm";
}

std::string_view runStatusName(RunStatus status)
{
	switch (status) {
	case RunStatus::Ok: return "ok";
	case RunStatus::Failed: return "failed";
	case RunStatus::Interrupted: return "interrupted";
	}
	return "?";
}

std::optional<double> median(std::vector<double> values)
{
	if (values.empty())
		return std::nullopt;
	std::sort(values.begin(), values.end());
	const size_t mid = values.size() / 2;
	if (values.size() % 2)
		return values[mid];
	return (values[mid - 1] + values[mid]) / 2;
}

std::vector<double> entitledShares(const std::vector<VmTemplate> &vms, unsigned poolCpus)
{
	// Each thread wants at most its duty cycle of a CPU (and a CPU at most).
	auto want = [](const VmTemplate &vm) { return std::clamp(vm.duty, 0.0, 1.0); };
	// Water-filling: serve the VMs wanting least first; once the threads left cannot all get
	// what the next one wants, they share what is left equally (the level).
	std::vector<size_t> order(vms.size());
	std::iota(order.begin(), order.end(), size_t{ 0 });
	std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return want(vms[a]) < want(vms[b]); });
	double capacity = poolCpus;
	double threads = 0;
	for (const VmTemplate &vm : vms)
		threads += vm.vcpus;
	double level = 1.0;
	for (size_t i : order) {
		const double n = vms[i].vcpus;
		if (want(vms[i]) * threads <= capacity) {
			capacity -= n * want(vms[i]);
			threads -= n;
			continue;
		}
		level = capacity / threads;
		break;
	}
	std::vector<double> shares;
	for (const VmTemplate &vm : vms) {
		const double shared = std::min(want(vm), level);
		// Alone, the VM's threads share the pool among themselves only.
		const double alone = vm.vcpus ? std::min(want(vm), static_cast<double>(poolCpus) / vm.vcpus) : 0.0;
		shares.push_back(alone > 0 ? shared / alone : 0.0);
	}
	return shares;
}

std::optional<double> shareRatio(double ops, double aloneOps, double share)
{
	if (!(aloneOps > 0) || !(share > 0))
		return std::nullopt;
	return ops / (aloneOps * share);
}

void deriveRatios(std::vector<RunRecord> &records)
{
	std::vector<AloneSamples> alone;
	for (const RunRecord &record : records) {
		const RunPlan &plan = record.plan;
		if (record.status != RunStatus::Ok || (plan.kind != RunKind::Alone && plan.kind != RunKind::CpuAlone) ||
		    plan.vms.size() != 1 || record.vmOps.size() != 1)
			continue;
		const bool ple = aloneKeyPle(plan.vms.front(), plan.policy.pauseExits);
		auto it = std::find_if(alone.begin(), alone.end(), [&](const AloneSamples &s) {
			return s.scenario == plan.scenario && s.pauseExits == ple && s.vm == plan.vms.front();
		});
		if (it == alone.end())
			it = alone.insert(alone.end(), { plan.scenario, plan.vms.front(), ple, {} });
		it->ops.push_back(record.vmOps.front());
	}
	for (RunRecord &record : records) {
		const RunPlan &plan = record.plan;
		record.vmEfficiency.clear();
		record.efficiency.reset();
		record.fairness.reset();
		if (record.status != RunStatus::Ok || record.vmOps.size() != plan.vms.size())
			continue;
		// The co-runner shares the pool too: it is last in the run and in the shares.
		std::vector<VmTemplate> pool = plan.vms;
		if (plan.coRunner)
			pool.push_back(*plan.coRunner);
		const std::vector<double> shares = entitledShares(pool, plan.poolCpus);
		std::vector<double> known;
		for (size_t i = 0; i < plan.vms.size(); ++i) {
			const auto aloneOps = aloneMedian(alone, plan.scenario, plan.vms[i], plan.policy.pauseExits);
			const auto ratio = aloneOps ? shareRatio(record.vmOps[i], *aloneOps, shares[i]) : std::nullopt;
			record.vmEfficiency.push_back(ratio);
			if (ratio)
				known.push_back(*ratio);
		}
		// A mean over some VMs only would hide the missing ones: all or nothing.
		if (!known.empty() && known.size() == plan.vms.size())
			record.efficiency = mean(known);
		if (plan.kind == RunKind::Fairness && plan.coRunner && record.cpuOps) {
			if (auto aloneOps = aloneMedian(alone, plan.scenario, *plan.coRunner, plan.policy.pauseExits))
				record.fairness = shareRatio(*record.cpuOps, *aloneOps, shares.back());
		}
	}
}

std::vector<CellSummary> summarize(const std::vector<RunRecord> &records)
{
	struct Acc {
		CellSummary cell;
		std::vector<double> ops, eff, fair, spins, boosts, boostedMs, cpuMs, steal;
		std::vector<std::vector<double>> vmEff;
	};
	std::vector<Acc> cells;
	auto find = [&](const RunPlan &plan, const std::string &policy) -> Acc & {
		std::vector<std::string> labels;
		for (const VmTemplate &vm : plan.vms)
			labels.push_back(vm.label());
		for (Acc &acc : cells) {
			const CellSummary &c = acc.cell;
			if (c.scenario == plan.scenario && c.lock == plan.lock && c.csNs == plan.csNs &&
			    c.overcommit == plan.overcommit && c.policy == policy && c.vms == labels)
				return acc;
		}
		Acc acc;
		acc.cell.scenario = plan.scenario;
		acc.cell.lock = plan.lock;
		acc.cell.csNs = plan.csNs;
		acc.cell.overcommit = plan.overcommit;
		acc.cell.policy = policy;
		acc.cell.vms = labels;
		acc.vmEff.resize(labels.size());
		cells.push_back(acc);
		return cells.back();
	};
	for (const RunRecord &record : records) {
		const RunPlan &plan = record.plan;
		const bool baseline = plan.kind == RunKind::Alone || plan.kind == RunKind::CpuAlone;
		Acc &acc = find(plan, baseline ? "alone " + plan.policy.label() : plan.policy.label());
		const bool ok = record.status == RunStatus::Ok;
		if (record.hostStealShare) {
			acc.steal.push_back(*record.hostStealShare);
			acc.cell.stolenRuns += *record.hostStealShare > kStolenRunShare ? 1 : 0;
		}
		if (plan.kind == RunKind::Fairness) {
			// The co-runner's run belongs to the cell, but its VMs had one more VM to
			// share with: keep them out of the cell's efficiency.
			if (ok && record.fairness)
				acc.fair.push_back(*record.fairness);
			continue;
		}
		++acc.cell.runs;
		if (!ok)
			continue;
		++acc.cell.okRuns;
		if (auto m = meanLockOps(record))
			acc.ops.push_back(*m);
		if (record.efficiency)
			acc.eff.push_back(*record.efficiency);
		for (size_t i = 0; i < record.vmEfficiency.size() && i < acc.vmEff.size(); ++i) {
			if (record.vmEfficiency[i])
				acc.vmEff[i].push_back(*record.vmEfficiency[i]);
		}
		acc.spins.push_back(static_cast<double>(record.spinWaits));
		acc.boosts.push_back(static_cast<double>(record.boosts));
		acc.boostedMs.push_back(static_cast<double>(record.boostedUs) / 1000.0);
		acc.cpuMs.push_back(record.schedulerCpuMs);
	}
	std::vector<CellSummary> out;
	for (Acc &acc : cells) {
		CellSummary cell = acc.cell;
		cell.opsPerVm = median(acc.ops);
		cell.efficiency = median(acc.eff);
		if (!acc.eff.empty()) {
			cell.efficiencyMin = *std::min_element(acc.eff.begin(), acc.eff.end());
			cell.efficiencyMax = *std::max_element(acc.eff.begin(), acc.eff.end());
		}
		for (const std::vector<double> &values : acc.vmEff)
			cell.vmEfficiency.push_back(median(values));
		cell.fairness = median(acc.fair);
		cell.spinWaits = median(acc.spins);
		cell.boosts = median(acc.boosts);
		cell.boostedMs = median(acc.boostedMs);
		cell.schedulerCpuMs = median(acc.cpuMs);
		cell.hostStealShare = median(acc.steal);
		out.push_back(cell);
	}
	return out;
}

} // namespace spindle::bench
