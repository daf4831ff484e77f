// Placeholder until sched/ lands: only the cfs baseline, without a pool.
#include "vmm/runtime/session.h"

namespace spindle {

namespace {
class NoScheduler final : public SessionScheduler
{
public:
	void vcpuThreadStarted(int, unsigned, pid_t) override {}
	void vcpuThreadStopping(int, unsigned) override {}
	void longSpin(int, unsigned, uint32_t, uint32_t) override {}
	Status addVm(const VirtualMachine &) override { return {}; }
	Status start() override { return {}; }
	void vmStopped(int) override {}
	void stop() override {}
	std::string metricsJson() const override { return "{\"policy\": \"cfs\"}"; }
	std::string summary() const override { return {}; }
};
} // namespace

Result<std::unique_ptr<SessionScheduler>> makeSessionScheduler(const RunOptions &options)
{
	if (options.policy != "cfs")
		return Error::invalid("unknown policy '" + options.policy + "' (available: cfs)");
	if (!options.pcpus.empty())
		return Error::invalid("--pcpus needs the scheduler, which is not built yet");
	return std::unique_ptr<SessionScheduler>(new NoScheduler);
}

bool isSchedulerFlag(const std::string &)
{
	return false;
}

std::string schedulerHelp()
{
	return "                          cfs   stock Linux scheduling, no reaction to spin waits\n";
}

} // namespace spindle
