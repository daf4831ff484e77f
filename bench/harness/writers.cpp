// The benchmark's output files, from the records and the cell summaries (results.h). Kept apart
// from the arithmetic in results.cpp: the numbers are defined there, only spelled here.

#include "bench/harness/host_steal.h"
#include "bench/harness/results.h"
#include "common/format.h"
#include "common/json.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <type_traits>

namespace spindle::bench {

namespace {

std::string fixedOr(const std::optional<double> &value, int decimals, const char *missing)
{
	return value ? fixed(*value, decimals) : missing;
}

// A share as a percentage with two decimals (the host's steal).
std::string percentOr(const std::optional<double> &share, const char *missing)
{
	return share && std::isfinite(*share) ? fixed(*share * 100, 2) : missing;
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

// Numbers joined by a separator; a missing one is `missing` (CSV: empty, JSON: null).
template<typename Number>
std::string joined(const std::vector<Number> &values, std::string_view separator, int decimals, const char *missing)
{
	std::string out;
	for (size_t i = 0; i < values.size(); ++i) {
		out += i ? std::string(separator) : "";
		if constexpr (std::is_same_v<Number, double>)
			out += fixed(values[i], decimals);
		else
			out += fixedOr(values[i], decimals, missing);
	}
	return out;
}

std::vector<std::string> labels(const std::vector<VmTemplate> &vms)
{
	std::vector<std::string> out;
	for (const VmTemplate &vm : vms)
		out.push_back(vm.label());
	return out;
}

std::string joinedText(const std::vector<std::string> &items, std::string_view separator)
{
	std::string out;
	for (const std::string &item : items)
		out += (out.empty() ? "" : std::string(separator)) + item;
	return out;
}

// "2 x lock/2 + 1 x lock/1": a VM mix by label, in order of first appearance.
std::string mixText(const std::vector<std::string> &vms)
{
	std::vector<std::pair<std::string, unsigned>> counts;
	for (const std::string &label : vms) {
		auto it = std::find_if(counts.begin(), counts.end(), [&](const auto &c) { return c.first == label; });
		if (it == counts.end())
			counts.push_back({ label, 1 });
		else
			++it->second;
	}
	std::string out;
	for (const auto &[label, count] : counts)
		out += (out.empty() ? "" : " + ") + (count > 1 ? std::to_string(count) + " x " : "") + label;
	return out;
}

std::string vmJson(const VmTemplate &vm)
{
	return "{\"role\": " + jsonString(vmRoleName(vm.role)) + ", \"vcpus\": " + std::to_string(vm.vcpus) +
	       ", \"args\": " + jsonString(joinedText(vm.args, " ")) + "}";
}

std::string hostJson(const HostInfo &host)
{
	return "{\"kind\": " + jsonString(host.kind) + ", \"backend\": " + jsonString(host.backend) + ", \"cpu_model\": " + jsonString(host.cpuModel) +
	       ", \"kernel\": " + jsonString(host.kernel) + ", \"cores\": " + std::to_string(host.cores) +
	       ", \"spindle_version\": " + jsonString(host.version) + ", \"date\": " + jsonString(host.date) +
	       ", \"command\": " + jsonString(host.command) + "}";
}

std::string hostLine(const HostInfo &host)
{
	const std::string backend = host.backend.empty() ? "" : " (" + host.backend + ")";
	return "host: " + host.kind + backend + ", " + host.cpuModel + ", " + std::to_string(host.cores) + " CPUs, kernel " +
	       host.kernel + "; spindle " + host.version + "; " + host.date;
}

bool isAlone(const CellSummary &c)
{
	return c.policy.starts_with("alone");
}

// The values of one field in the order the cells name them first (the matrix's order).
template<typename Field>
std::vector<std::string> firstSeen(const std::vector<CellSummary> &cells, Field field)
{
	std::vector<std::string> order;
	for (const CellSummary &c : cells) {
		if (std::find(order.begin(), order.end(), field(c)) == order.end())
			order.push_back(field(c));
	}
	return order;
}

std::string scenarioOf(const CellSummary &c)
{
	return c.scenario;
}

std::string scenarioMix(const std::string &name)
{
	for (const ScenarioInfo &info : knownScenarios()) {
		if (info.name == name) {
			std::string text(info.mix);
			std::replace(text.begin(), text.end(), '\n', ' ');
			return text;
		}
	}
	return "";
}

using GroupKey = std::tuple<std::string, uint64_t>; // lock, cs

// One scenario's section of summary.md: per lock and cs, its alone numbers, the VMs at each k
// and a table of medians, policies down and overcommit factors across.
std::string scenarioSection(const std::string &scenario, const std::vector<CellSummary> &all)
{
	std::vector<const CellSummary *> cells;
	for (const CellSummary &c : all) {
		if (c.scenario == scenario)
			cells.push_back(&c);
	}
	std::vector<GroupKey> groups;
	std::vector<unsigned> factors;
	std::vector<std::string> policies;
	for (const CellSummary *c : cells) {
		if (isAlone(*c))
			continue;
		if (std::find(groups.begin(), groups.end(), GroupKey{ c->lock, c->csNs }) == groups.end())
			groups.push_back({ c->lock, c->csNs });
		if (std::find(factors.begin(), factors.end(), c->overcommit) == factors.end())
			factors.push_back(c->overcommit);
		if (std::find(policies.begin(), policies.end(), c->policy) == policies.end())
			policies.push_back(c->policy);
	}
	std::sort(factors.begin(), factors.end());
	auto lookup = [&](const GroupKey &group, unsigned k, const std::string &policy) -> const CellSummary * {
		for (const CellSummary *c : cells) {
			if (c->lock == std::get<0>(group) && c->csNs == std::get<1>(group) && c->overcommit == k &&
			    c->policy == policy)
				return c;
		}
		return nullptr;
	};
	std::string out = "\n## Scenario " + scenario + "\n\n" + markdownCell(scenarioMix(scenario)) + ".\n";
	for (const GroupKey &group : groups) {
		out += "\n### lock " + std::get<0>(group) + ", cs " + formatDuration(std::get<1>(group)) + "\n\nAlone:";
		// The baselines of this group: its lock VMs', and those of the VMs without a lock.
		for (const CellSummary *c : cells) {
			if (isAlone(*c) && (c->lock.empty() || (c->lock == std::get<0>(group) && c->csNs == std::get<1>(group))))
				out += " " + joinedText(c->vms, " ") + " " + fixedOr(c->opsPerVm, 0, "n/a") + " ops/s under " +
				       c->policy.substr(6) + " (median of " + std::to_string(c->okRuns) + ");";
		}
		out.back() = '.';
		out += "\n\nVMs:";
		for (unsigned k : factors) {
			for (const CellSummary *c : cells) {
				if (!isAlone(*c) && c->overcommit == k && c->lock == std::get<0>(group) && c->csNs == std::get<1>(group)) {
					out += " " + std::to_string(k) + "x " + mixText(c->vms) + ";";
					break;
				}
			}
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
	return out;
}

// What the run's boosts were ("fifo" also for policies that never boost: it is the default;
// "deadline-fell-back-to-fifo" when the kernel refused a deadline boost during the run).
std::string boostClassName(const RunRecord &r)
{
	if (!r.plan.policy.deadlineBoosts)
		return "fifo";
	return r.boostFellBackToFifo ? "deadline-fell-back-to-fifo" : "deadline";
}

} // namespace

std::string runsCsv(const std::vector<RunRecord> &records, const HostInfo &host)
{
	std::string out = "run,scenario,kind,policy,pause_exits,boost_class,overcommit,lock,cs_ns,repeat,status,failure,wall_s,"
			  "vms,vm_ops_per_s,vm_efficiency,cpu_ops_per_s,efficiency,fairness,spin_waits,boosts,boosted_us,"
			  "scheduler_cpu_ms,host_steal_pct,host_kind,host_cpu,host_kernel,host_cores,spindle_version,date,command\n";
	for (const RunRecord &r : records) {
		const std::string fields[] = {
			std::to_string(r.index), r.plan.scenario, std::string(runKindName(r.plan.kind)), r.plan.policy.policy,
			r.plan.policy.pauseExits ? "on" : "off", boostClassName(r),
			std::to_string(r.plan.overcommit), r.plan.lock,
			std::to_string(r.plan.csNs), std::to_string(r.plan.repeat + 1),
			std::string(runStatusName(r.status)), r.failure, fixed(r.wallSeconds, 3),
			joinedText(labels(r.plan.vms), ";"), joined(r.vmOps, ";", 1, ""), joined(r.vmEfficiency, ";", 4, ""),
			fixedOr(r.cpuOps, 1, ""), fixedOr(r.efficiency, 4, ""), fixedOr(r.fairness, 4, ""),
			std::to_string(r.spinWaits), std::to_string(r.boosts), std::to_string(r.boostedUs),
			fixed(r.schedulerCpuMs, 1), percentOr(r.hostStealShare, ""), host.kind, host.cpuModel, host.kernel,
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
		std::string vms;
		for (const VmTemplate &vm : r.plan.vms)
			vms += (vms.empty() ? "" : ", ") + vmJson(vm);
		out += std::string(i ? "," : "") + "\n  {\"run\": " + std::to_string(r.index) +
		       ", \"scenario\": " + jsonString(r.plan.scenario) +
		       ", \"kind\": " + jsonString(runKindName(r.plan.kind)) +
		       ", \"policy\": " + jsonString(r.plan.policy.policy) +
		       ", \"pause_exits\": " + (r.plan.policy.pauseExits ? "true" : "false") +
		       ", \"boost_class\": " + jsonString(boostClassName(r)) +
		       ", \"overcommit\": " + std::to_string(r.plan.overcommit) +
		       ", \"lock\": " + jsonString(r.plan.lock) + ", \"cs_ns\": " + std::to_string(r.plan.csNs) +
		       ", \"repeat\": " + std::to_string(r.plan.repeat + 1) +
		       ", \"pool_cpus\": " + std::to_string(r.plan.poolCpus) + ", \"vms\": [" + vms + "]" +
		       ", \"co_runner\": " + (r.plan.coRunner ? vmJson(*r.plan.coRunner) : "null") +
		       ", \"status\": " + jsonString(runStatusName(r.status)) +
		       ", \"failure\": " + jsonString(r.failure) + ", \"wall_s\": " + fixed(r.wallSeconds, 3) +
		       ", \"vm_ops_per_s\": [" + joined(r.vmOps, ", ", 1, "null") + "]" +
		       ", \"vm_efficiency\": [" + joined(r.vmEfficiency, ", ", 4, "null") + "]" +
		       ", \"cpu_ops_per_s\": " + jsonNumber(r.cpuOps, 1) +
		       ", \"efficiency\": " + jsonNumber(r.efficiency, 4) +
		       ", \"fairness\": " + jsonNumber(r.fairness, 4) +
		       ", \"spin_waits\": " + std::to_string(r.spinWaits) + ", \"boosts\": " + std::to_string(r.boosts) +
		       ", \"boosted_us\": " + std::to_string(r.boostedUs) +
		       ", \"scheduler_cpu_ms\": " + fixed(r.schedulerCpuMs, 1) +
		       ", \"host_steal_pct\": " + percentOr(r.hostStealShare, "null") + "}";
	}
	out += "\n],\n\"cells\": [";
	for (size_t i = 0; i < cells.size(); ++i) {
		const CellSummary &c = cells[i];
		std::string vms;
		for (const std::string &label : c.vms)
			vms += (vms.empty() ? "" : ", ") + jsonString(label);
		out += std::string(i ? "," : "") + "\n  {\"scenario\": " + jsonString(c.scenario) +
		       ", \"lock\": " + jsonString(c.lock) +
		       ", \"cs_ns\": " + std::to_string(c.csNs) + ", \"overcommit\": " + std::to_string(c.overcommit) +
		       ", \"policy\": " + jsonString(c.policy) + ", \"vms\": [" + vms + "]" +
		       ", \"runs\": " + std::to_string(c.runs) +
		       ", \"ok_runs\": " + std::to_string(c.okRuns) + ", \"ops_per_vm\": " + jsonNumber(c.opsPerVm, 1) +
		       ", \"efficiency\": " + jsonNumber(c.efficiency, 4) +
		       ", \"efficiency_min\": " + jsonNumber(c.efficiencyMin, 4) +
		       ", \"efficiency_max\": " + jsonNumber(c.efficiencyMax, 4) +
		       ", \"vm_efficiency\": [" + joined(c.vmEfficiency, ", ", 4, "null") + "]" +
		       ", \"fairness\": " + jsonNumber(c.fairness, 4) + ", \"spin_waits\": " + jsonNumber(c.spinWaits, 1) +
		       ", \"boosts\": " + jsonNumber(c.boosts, 1) + ", \"boosted_ms\": " + jsonNumber(c.boostedMs, 3) +
		       ", \"scheduler_cpu_ms\": " + jsonNumber(c.schedulerCpuMs, 1) +
		       ", \"host_steal_pct\": " + percentOr(c.hostStealShare, "null") +
		       ", \"stolen_runs\": " + std::to_string(c.stolenRuns) + "}";
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
	out += "\nEfficiency of a VM = its throughput / (its throughput alone on the pool under cfs, same PLE setting, x "
	       "its fair share); a run's efficiency is the mean over its VMs, 1.0 the physical limit. The fair share "
	       "splits the pool equally over the vCPUs that want it (a sleepy vCPU only wants its busy part; see "
	       "BENCHMARKS.md): 1/k for k equal busy VMs. Medians over repetitions. Fairness = the cpu-bound co-runner's "
	       "rate / its entitled share, the same rule.\n";
	unsigned stolen = 0;
	for (const CellSummary &c : cells)
		stolen += c.stolenRuns;
	if (stolen > 0)
		out += "\n**Host steal:** in " + std::to_string(stolen) + (stolen == 1 ? " run" : " runs") +
		       " the host took more than " + fixed(kStolenRunShare * 100, 0) +
		       "% of the CPUs' time (the steal column of /proc/stat; \"stolen runs\" under Every cell). "
		       "Every thread slows in such a run, a reference run's too: read those cells' medians with care.\n";
	for (const std::string &scenario : firstSeen(cells, scenarioOf))
		out += scenarioSection(scenario, cells);

	out += "\n## Every cell\n\n| scenario | lock | cs | k | policy | VMs | ok/runs | ops/s per lock VM | "
	       "efficiency (min–max) | per-VM efficiency | fairness | spin waits | boosts | boosted ms | "
	       "scheduler CPU ms | host steal % | stolen runs |\n"
	       "|---|---|---|---:|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
	for (const CellSummary &c : cells) {
		std::string eff = fixedOr(c.efficiency, 3, "–");
		if (c.efficiencyMin)
			eff += " (" + fixed(*c.efficiencyMin, 2) + "–" + fixed(*c.efficiencyMax, 2) + ")";
		out += "| " + markdownCell(c.scenario) + " | " + (c.lock.empty() ? "–" : c.lock) + " | " +
		       (c.lock.empty() ? "–" : formatDuration(c.csNs)) + " | " + std::to_string(c.overcommit) + " | " +
		       markdownCell(c.policy) + " | " + mixText(c.vms) + " | " + std::to_string(c.okRuns) + "/" +
		       std::to_string(c.runs) + " | " + fixedOr(c.opsPerVm, 0, "–") + " | " + eff + " | " +
		       joined(c.vmEfficiency, " ", 2, "–") + " | " + fixedOr(c.fairness, 2, "–") + " | " +
		       fixedOr(c.spinWaits, 0, "–") + " | " + fixedOr(c.boosts, 0, "–") + " | " +
		       fixedOr(c.boostedMs, 1, "–") + " | " + fixedOr(c.schedulerCpuMs, 1, "–") + " | " +
		       percentOr(c.hostStealShare, "–") + " | " + std::to_string(c.stolenRuns) + " |\n";
	}
	return out;
}

std::string summaryCsv(const std::vector<CellSummary> &cells)
{
	std::vector<CellSummary> sorted;
	for (const CellSummary &c : cells) {
		if (!isAlone(c))
			sorted.push_back(c);
	}
	// Scenarios, locks and policies keep the matrix's order, and so do the panels and the
	// legend (bench/run-matrix lists them in file order).
	auto rankBy = [&](auto field) {
		return [order = firstSeen(sorted, field), field](const CellSummary &c) {
			return std::find(order.begin(), order.end(), field(c)) - order.begin();
		};
	};
	const auto scenarioRank = rankBy(scenarioOf);
	const auto lockRank = rankBy([](const CellSummary &c) { return c.lock; });
	const auto policyRank = rankBy([](const CellSummary &c) { return c.policy; });
	// gnuplot draws one line per policy from consecutive rows: keep each line's rows together.
	std::stable_sort(sorted.begin(), sorted.end(), [&](const CellSummary &a, const CellSummary &b) {
		return std::make_tuple(scenarioRank(a), lockRank(a), a.csNs, policyRank(a), a.overcommit) <
		       std::make_tuple(scenarioRank(b), lockRank(b), b.csNs, policyRank(b), b.overcommit);
	});
	// A panel is one scenario, lock and cs; its name is one word (bench/plot.gp splits on spaces).
	std::string out = "scenario,panel,lock,cs_ns,policy,overcommit,efficiency,efficiency_min,efficiency_max,fairness\n";
	for (const CellSummary &c : sorted) {
		out += csvField(c.scenario) + "," + csvField(c.scenario + "/" + c.lock + "@" + formatDuration(c.csNs)) + "," +
		       csvField(c.lock) + "," + std::to_string(c.csNs) + "," + csvField(c.policy) + "," +
		       std::to_string(c.overcommit) + "," + fixedOr(c.efficiency, 4, "NaN") + "," +
		       fixedOr(c.efficiencyMin, 4, "NaN") + "," + fixedOr(c.efficiencyMax, 4, "NaN") + "," +
		       fixedOr(c.fairness, 4, "NaN") + "\n";
	}
	return out;
}

} // namespace spindle::bench
