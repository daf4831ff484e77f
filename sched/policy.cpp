#include "sched/policy.h"

#include "sched/policies/adaptive.h"
#include "sched/policies/cfs.h"
#include "sched/policies/coboost.h"
#include "sched/policies/express.h"
#include "sched/policies/extend.h"
#include "sched/policies/gang.h"
#include "sched/policies/yield.h"

namespace spindle::sched {

std::unique_ptr<Policy> makePolicy(const SchedulerOptions &options)
{
	switch (options.policy) {
	case PolicyKind::Cfs: return std::make_unique<CfsPolicy>();
	case PolicyKind::Yield: return std::make_unique<YieldPolicy>();
	case PolicyKind::Coboost: return std::make_unique<CoboostPolicy>();
	case PolicyKind::Extend: return std::make_unique<ExtendPolicy>();
	case PolicyKind::Express: return std::make_unique<ExpressPolicy>();
	case PolicyKind::Gang: return std::make_unique<GangPolicy>();
	case PolicyKind::Adaptive: return std::make_unique<AdaptivePolicy>(options);
	}
	return std::make_unique<CfsPolicy>();
}

} // namespace spindle::sched
