#include "common/format.h"
#include "common/json.h"
#include "bench/harness/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

namespace spindle::bench {

namespace {

std::string fixedOr(const std::optional<double> &value, int decimals, const char *missing)
{
	return value ? fixed(*value, decimals) : missing;
}

std::string jsonNumber(const std::optional<double> &value, int decimals)
{
	// JSON has no NaN; a missing number is null.
	return value && std::isfinite(*value) ? fixed(*value, decimals) : "null";
}

// RFC 4180: quote a field that holds a separator, a quote or a line break.
std::string csvField(std::string_view text)
{
	if (text.find_first_of(",\"\r\n") == std::string_view::npos)
		return std::string(text);
	std::string out = "\"";
	for (char c : text) {
		if (c == '"')
			out += '"';
		out += c;
	}
	return out + "\"";
}

// Markdown table cells cannot hold '|' or line breaks.
std::string markdownCell(std::string_view text)
{
	std::string out;
	for (char c : text) {
		if (c == '|')
			out += "\\|";
		else if (c == '\n' || c == '\r')
			out += ' ';
		else
			out += c;
	}
	return out;
}

std::optional<double> mean(const std::vector<double> &values)
{
	if (values.empty())
		return std::nullopt;
	double sum = 0;
	for (double value : values)
		sum += value;
	return sum / static_cast<double>(values.size());
}

using GroupKey = std::tuple<std::string, uint64_t>;           // lock, cs
using AloneKey = std::tuple<std::string, uint64_t, bool>;      // lock, cs, PLE

std::string hostJson(const HostInfo &host)
{
	return "{\"kind\": " + jsonString(host.kind) + ", \"cpu_model\": " + jsonString(host.cpuModel) +
	       ", \"kernel\": " + jsonString(host.kernel) + ", \"cores\": " + std::to_string(host.cores) +
	       ", \"spindle_version\": " + jsonString(host.version) + ", \"date\": " + jsonString(host.date) +
	       ", \"command\": " + jsonString(host.command) + "}";
}

std::string hostLine(const HostInfo &host)
{
	return "host: " + host.kind + ", " + host.cpuModel + ", " + std::to_string(host.cores) + " CPUs, kernel " +
	       host.kernel + "; spindle " + host.version + "; " + host.date;
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

std::optional<double> efficiency(const std::vector<double> &lockOps, double aloneOps)
{
	if (lockOps.empty() || !(aloneOps > 0))
		return std::nullopt;
	// Each of k VMs is entitled to alone / k; the mean of their ratios is sum / alone.
	const double share = aloneOps / static_cast<double>(lockOps.size());
	double sum = 0;
	for (double ops : lockOps)
		sum += ops / share;
	return sum / static_cast<double>(lockOps.size());
}

std::optional<double> fairness(double cpuOps, double cpuAloneOps, unsigned vmsInPool)
{
	if (!(cpuAloneOps > 0) || vmsInPool == 0)
		return std::nullopt;
	return cpuOps / (cpuAloneOps / static_cast<double>(vmsInPool));
}

void deriveRatios(std::vector<RunRecord> &records)
{
	std::map<AloneKey, std::vector<double>> alone;
	std::vector<double> cpuAlone;
	for (const RunRecord &record : records) {
		if (record.status != RunStatus::Ok)
			continue;
		if (record.plan.kind == RunKind::Alone && record.lockOps.size() == 1)
			alone[{ record.plan.lock, record.plan.csNs, record.plan.policy.pauseExits }].push_back(
				record.lockOps.front());
		if (record.plan.kind == RunKind::CpuAlone && record.cpuOps)
			cpuAlone.push_back(*record.cpuOps);
	}
	const std::optional<double> cpuAloneMedian = median(cpuAlone);
	for (RunRecord &record : records) {
		record.efficiency.reset();
		record.fairness.reset();
		if (record.status != RunStatus::Ok || record.plan.kind == RunKind::CpuAlone)
			continue;
		auto it = alone.find({ record.plan.lock, record.plan.csNs, record.plan.policy.pauseExits });
		if (it != alone.end())
			record.efficiency = efficiency(record.lockOps, *median(it->second));
		if (record.plan.kind == RunKind::Fairness && record.cpuOps && cpuAloneMedian)
			record.fairness = fairness(*record.cpuOps, *cpuAloneMedian,
						   static_cast<unsigned>(record.lockOps.size()) + 1);
	}
}

std::vector<CellSummary> summarize(const std::vector<RunRecord> &records)
{
	struct Acc {
		CellSummary cell;
		std::vector<double> ops, eff, fair, spins, boosts, boostedMs, cpuMs;
	};
	std::vector<Acc> cells;
	auto find = [&](const RunPlan &plan, const std::string &policy) -> Acc & {
		for (Acc &acc : cells) {
			if (acc.cell.lock == plan.lock && acc.cell.csNs == plan.csNs &&
			    acc.cell.overcommit == plan.overcommit && acc.cell.policy == policy)
				return acc;
		}
		Acc acc;
		acc.cell.lock = plan.lock;
		acc.cell.csNs = plan.csNs;
		acc.cell.overcommit = plan.overcommit;
		acc.cell.policy = policy;
		cells.push_back(acc);
		return cells.back();
	};
	for (const RunRecord &record : records) {
		const RunPlan &plan = record.plan;
		if (plan.kind == RunKind::CpuAlone)
			continue;
		Acc &acc = find(plan, plan.kind == RunKind::Alone ? "alone " + plan.policy.label() : plan.policy.label());
		const bool ok = record.status == RunStatus::Ok;
		if (plan.kind == RunKind::Fairness) {
			// The co-runner's run belongs to the cell, but its lock VMs had one more
			// VM to share with: keep them out of the cell's efficiency.
			if (ok && record.fairness)
				acc.fair.push_back(*record.fairness);
			continue;
		}
		++acc.cell.runs;
		if (!ok)
			continue;
		++acc.cell.okRuns;
		if (auto m = mean(record.lockOps))
			acc.ops.push_back(*m);
		if (record.efficiency)
			acc.eff.push_back(*record.efficiency);
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
		cell.fairness = median(acc.fair);
		cell.spinWaits = median(acc.spins);
		cell.boosts = median(acc.boosts);
		cell.boostedMs = median(acc.boostedMs);
		cell.schedulerCpuMs = median(acc.cpuMs);
		out.push_back(cell);
	}
	return out;
}

std::string runsCsv(const std::vector<RunRecord> &records, const HostInfo &host)
{
	std::string out = "run,kind,policy,pause_exits,overcommit,lock,cs_ns,repeat,status,failure,wall_s,"
			  "vm_ops_per_s,cpu_ops_per_s,efficiency,fairness,spin_waits,boosts,boosted_us,"
			  "scheduler_cpu_ms,host_kind,host_cpu,host_kernel,host_cores,spindle_version,date,command\n";
	for (const RunRecord &r : records) {
		std::string ops;
		for (double value : r.lockOps)
			ops += (ops.empty() ? "" : ";") + fixed(value, 1);
		const std::string fields[] = {
			std::to_string(r.index), std::string(runKindName(r.plan.kind)), r.plan.policy.policy,
			r.plan.policy.pauseExits ? "on" : "off", std::to_string(r.plan.overcommit), r.plan.lock,
			std::to_string(r.plan.csNs), std::to_string(r.plan.repeat + 1),
			std::string(runStatusName(r.status)), r.failure, fixed(r.wallSeconds, 3), ops,
			fixedOr(r.cpuOps, 1, ""), fixedOr(r.efficiency, 4, ""), fixedOr(r.fairness, 4, ""),
			std::to_string(r.spinWaits), std::to_string(r.boosts), std::to_string(r.boostedUs),
			fixed(r.schedulerCpuMs, 1), host.kind, host.cpuModel, host.kernel,
			std::to_string(host.cores), host.version, host.date, host.command,
		};
		bool first = true;
		for (const std::string &field : fields) {
			out += (first ? "" : ",") + csvField(field);
			first = false;
		}
		out += '\n';
	}
	return out;
}

std::string runsJson(const std::vector<RunRecord> &records, const std::vector<CellSummary> &cells,
		     const HostInfo &host, bool complete)
{
	std::string out = "{\n\"host\": " + hostJson(host) + ",\n\"complete\": " + (complete ? "true" : "false") +
			  ",\n\"runs\": [";
	for (size_t i = 0; i < records.size(); ++i) {
		const RunRecord &r = records[i];
		std::string ops;
		for (double value : r.lockOps)
			ops += (ops.empty() ? "" : ", ") + fixed(value, 1);
		out += std::string(i ? "," : "") + "\n  {\"run\": " + std::to_string(r.index) +
		       ", \"kind\": " + jsonString(runKindName(r.plan.kind)) +
		       ", \"policy\": " + jsonString(r.plan.policy.policy) +
		       ", \"pause_exits\": " + (r.plan.policy.pauseExits ? "true" : "false") +
		       ", \"overcommit\": " + std::to_string(r.plan.overcommit) +
		       ", \"lock\": " + jsonString(r.plan.lock) + ", \"cs_ns\": " + std::to_string(r.plan.csNs) +
		       ", \"repeat\": " + std::to_string(r.plan.repeat + 1) +
		       ", \"status\": " + jsonString(runStatusName(r.status)) +
		       ", \"failure\": " + jsonString(r.failure) + ", \"wall_s\": " + fixed(r.wallSeconds, 3) +
		       ", \"vm_ops_per_s\": [" + ops + "], \"cpu_ops_per_s\": " + jsonNumber(r.cpuOps, 1) +
		       ", \"efficiency\": " + jsonNumber(r.efficiency, 4) +
		       ", \"fairness\": " + jsonNumber(r.fairness, 4) +
		       ", \"spin_waits\": " + std::to_string(r.spinWaits) + ", \"boosts\": " + std::to_string(r.boosts) +
		       ", \"boosted_us\": " + std::to_string(r.boostedUs) +
		       ", \"scheduler_cpu_ms\": " + fixed(r.schedulerCpuMs, 1) + "}";
	}
	out += "\n],\n\"cells\": [";
	for (size_t i = 0; i < cells.size(); ++i) {
		const CellSummary &c = cells[i];
		out += std::string(i ? "," : "") + "\n  {\"lock\": " + jsonString(c.lock) +
		       ", \"cs_ns\": " + std::to_string(c.csNs) + ", \"overcommit\": " + std::to_string(c.overcommit) +
		       ", \"policy\": " + jsonString(c.policy) + ", \"runs\": " + std::to_string(c.runs) +
		       ", \"ok_runs\": " + std::to_string(c.okRuns) + ", \"ops_per_vm\": " + jsonNumber(c.opsPerVm, 1) +
		       ", \"efficiency\": " + jsonNumber(c.efficiency, 4) +
		       ", \"efficiency_min\": " + jsonNumber(c.efficiencyMin, 4) +
		       ", \"efficiency_max\": " + jsonNumber(c.efficiencyMax, 4) +
		       ", \"fairness\": " + jsonNumber(c.fairness, 4) + ", \"spin_waits\": " + jsonNumber(c.spinWaits, 1) +
		       ", \"boosts\": " + jsonNumber(c.boosts, 1) + ", \"boosted_ms\": " + jsonNumber(c.boostedMs, 3) +
		       ", \"scheduler_cpu_ms\": " + jsonNumber(c.schedulerCpuMs, 1) + "}";
	}
	out += "\n]\n}\n";
	return out;
}

std::string summaryMarkdown(const std::vector<CellSummary> &cells, const HostInfo &host, bool complete)
{
	std::string out = "# Spindle overcommit benchmark\n\n";
	out += "- " + markdownCell(hostLine(host)) + "\n";
	out += "- command: `" + host.command + "`\n";
	if (!complete)
		out += "- **incomplete**: the matrix was interrupted; medians are over the runs that finished\n";
	out += "\nEfficiency = a VM's throughput / (its throughput alone on the pool under cfs, same PLE "
	       "setting / k); 1.0 is the physical limit. Medians over repetitions. Fairness = the cpu-bound co-runner's rate / its "
	       "entitled share (1 / VMs in the pool of its rate alone).\n";

	// One efficiency table per lock and critical section: policies down, overcommit across.
	std::vector<GroupKey> groups;
	std::vector<unsigned> factors;
	std::vector<std::string> policies;
	for (const CellSummary &c : cells) {
		if (std::find(groups.begin(), groups.end(), GroupKey{ c.lock, c.csNs }) == groups.end())
			groups.push_back({ c.lock, c.csNs });
		if (!c.policy.starts_with("alone")) {
			if (std::find(factors.begin(), factors.end(), c.overcommit) == factors.end())
				factors.push_back(c.overcommit);
			if (std::find(policies.begin(), policies.end(), c.policy) == policies.end())
				policies.push_back(c.policy);
		}
	}
	std::sort(factors.begin(), factors.end());
	auto lookup = [&](const GroupKey &group, unsigned k, const std::string &policy) -> const CellSummary * {
		for (const CellSummary &c : cells) {
			if (c.lock == std::get<0>(group) && c.csNs == std::get<1>(group) && c.overcommit == k && c.policy == policy)
				return &c;
		}
		return nullptr;
	};
	for (const GroupKey &group : groups) {
		out += "\n## lock " + std::get<0>(group) + ", cs " + formatDuration(std::get<1>(group)) + "\n\nAlone:";
		for (const CellSummary &c : cells) {
			if (c.lock == std::get<0>(group) && c.csNs == std::get<1>(group) && c.policy.starts_with("alone"))
				out += " " + fixedOr(c.opsPerVm, 0, "n/a") + " ops/s under " + c.policy.substr(6) +
				       " (median of " + std::to_string(c.okRuns) + ");";
		}
		out.back() = '.';
		out += "\n\n| policy |";
		for (unsigned k : factors)
			out += " eff " + std::to_string(k) + "x |";
		for (unsigned k : factors)
			out += " fair " + std::to_string(k) + "x |";
		out += "\n|---|";
		for (size_t i = 0; i < factors.size() * 2; ++i)
			out += "---:|";
		out += '\n';
		for (const std::string &policy : policies) {
			out += "| " + markdownCell(policy) + " |";
			for (unsigned k : factors) {
				const CellSummary *c = lookup(group, k, policy);
				out += " " + (c ? fixedOr(c->efficiency, 2, "–") : std::string("–")) + " |";
			}
			for (unsigned k : factors) {
				const CellSummary *c = lookup(group, k, policy);
				out += " " + (c ? fixedOr(c->fairness, 2, "–") : std::string("–")) + " |";
			}
			out += '\n';
		}
	}

	out += "\n## Every cell\n\n| lock | cs | k | policy | ok/runs | ops/s per VM | efficiency (min–max) | "
	       "fairness | spin waits | boosts | boosted ms | scheduler CPU ms |\n"
	       "|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|\n";
	for (const CellSummary &c : cells) {
		std::string eff = fixedOr(c.efficiency, 3, "–");
		if (c.efficiencyMin)
			eff += " (" + fixed(*c.efficiencyMin, 2) + "–" + fixed(*c.efficiencyMax, 2) + ")";
		out += "| " + c.lock + " | " + formatDuration(c.csNs) + " | " + std::to_string(c.overcommit) + " | " +
		       markdownCell(c.policy) + " | " + std::to_string(c.okRuns) + "/" + std::to_string(c.runs) + " | " +
		       fixedOr(c.opsPerVm, 0, "–") + " | " + eff + " | " + fixedOr(c.fairness, 2, "–") + " | " +
		       fixedOr(c.spinWaits, 0, "–") + " | " + fixedOr(c.boosts, 0, "–") + " | " +
		       fixedOr(c.boostedMs, 1, "–") + " | " + fixedOr(c.schedulerCpuMs, 1, "–") + " |\n";
	}
	return out;
}

std::string summaryCsv(const std::vector<CellSummary> &cells)
{
	std::vector<CellSummary> sorted;
	for (const CellSummary &c : cells) {
		if (!c.policy.starts_with("alone"))
			sorted.push_back(c);
	}
	// gnuplot draws one line per policy from consecutive rows; keep each line's rows together.
	std::stable_sort(sorted.begin(), sorted.end(), [](const CellSummary &a, const CellSummary &b) {
		return std::tie(a.lock, a.csNs, a.policy, a.overcommit) < std::tie(b.lock, b.csNs, b.policy, b.overcommit);
	});
	std::string out = "panel,lock,cs_ns,policy,overcommit,efficiency,efficiency_min,efficiency_max,fairness\n";
	for (const CellSummary &c : sorted) {
		out += csvField(c.lock + "@" + formatDuration(c.csNs)) + "," + csvField(c.lock) + "," +
		       std::to_string(c.csNs) + "," + csvField(c.policy) + "," + std::to_string(c.overcommit) + "," +
		       fixedOr(c.efficiency, 4, "NaN") + "," + fixedOr(c.efficiencyMin, 4, "NaN") + "," +
		       fixedOr(c.efficiencyMax, 4, "NaN") + "," + fixedOr(c.fairness, 4, "NaN") + "\n";
	}
	return out;
}

} // namespace spindle::bench
