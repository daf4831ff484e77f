#include "sched/sampling/x86_decoder.h"

#include "sched/sampling/x86_decoder_detail.h"

namespace spindle::sched::sampling {

std::optional<Instruction> decodeInstruction(std::span<const uint8_t> bytes, uint64_t address)
{
	return detail::Decoder(bytes, address).run();
}

} // namespace spindle::sched::sampling
