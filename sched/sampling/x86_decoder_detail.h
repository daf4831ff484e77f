#pragma once

// The decoder's insides, shared by x86_decoder.cpp (prefixes, ModRM, operands) and
// x86_opcodes.cpp (the one- and two-byte opcode maps), split so neither file is too long to
// read. Not an interface: use x86_decoder.h.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>

#include "sched/sampling/x86_decoder.h"

namespace spindle::sched::sampling::detail {

// Reads through at most kMaxInstructionLength bytes, so an instruction that would be longer
// simply fails to decode (the CPU raises #GP for it).
class Cursor
{
public:
	explicit Cursor(std::span<const uint8_t> bytes)
		: bytes_(bytes.first(std::min<size_t>(bytes.size(), kMaxInstructionLength)))
	{
	}

	bool byte(uint8_t &out)
	{
		if (pos_ >= bytes_.size())
			return false;
		out = bytes_[pos_++];
		return true;
	}

	bool skip(size_t n)
	{
		if (bytes_.size() - pos_ < n)
			return false;
		pos_ += n;
		return true;
	}

	// A little-endian signed value of n bytes (1, 2 or 4), sign-extended.
	bool signedValue(size_t n, int64_t &out)
	{
		if (bytes_.size() - pos_ < n)
			return false;
		uint64_t value = 0;
		for (size_t i = 0; i < n; i++)
			value |= uint64_t{bytes_[pos_ + i]} << (8 * i);
		pos_ += n;
		unsigned shift = static_cast<unsigned>(64 - 8 * n);
		out = static_cast<int64_t>(value << shift) >> shift;
		return true;
	}

	size_t pos() const { return pos_; }

private:
	std::span<const uint8_t> bytes_;
	size_t pos_ = 0;
};

class Decoder
{
public:
	Decoder(std::span<const uint8_t> bytes, uint64_t address) : in_(bytes) { insn_.address = address; }

	std::optional<Instruction> run()
	{
		uint8_t op;
		if (!prefixes(op))
			return std::nullopt;
		if (!(op == 0x0f ? twoByte() : oneByte(op)))
			return std::nullopt;
		insn_.length = static_cast<uint8_t>(in_.pos());
		if (insn_.flow == Flow::Jump || insn_.flow == Flow::Branch || (insn_.flow == Flow::Call && hasRel_))
			insn_.target = insn_.address + insn_.length + static_cast<uint64_t>(rel_);
		return insn_;
	}

private:
	// Legacy prefixes in any order, then at most one REX right before the opcode (a REX that
	// is followed by another prefix is ignored, as the CPU ignores it).
	bool prefixes(uint8_t &op)
	{
		for (;;) {
			if (!in_.byte(op))
				return false;
			switch (op) {
			case 0xf0: lock_ = true; rex_ = 0; continue;
			case 0xf2: rex_ = 0; continue; // REPNE: no meaning for the decoded forms
			case 0xf3: rep_ = true; rex_ = 0; continue;
			case 0x66: opsize_ = true; rex_ = 0; continue;
			case 0x67: addrsize_ = true; rex_ = 0; continue;
			case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65: rex_ = 0; continue;
			default: break;
			}
			if ((op & 0xf0) == 0x40) {
				rex_ = op;
				continue;
			}
			return true;
		}
	}

	// ModRM, then SIB and displacement. Records the address registers of a memory operand.
	bool modrm()
	{
		uint8_t b;
		if (!in_.byte(b))
			return false;
		mod_ = b >> 6;
		reg_ = (b >> 3) & 7;
		rm_ = b & 7;
		memory_ = mod_ != 3;
		if (!memory_)
			return true;
		size_t disp = mod_ == 1 ? 1 : mod_ == 2 ? 4 : 0;
		if (rm_ == 4) {
			uint8_t sib;
			if (!in_.byte(sib))
				return false;
			unsigned index = ((sib >> 3) & 7) | ((rex_ & 2u) << 2);
			unsigned base = sib & 7;
			if (index != kRsp) // index 100b without REX.X means "no index"
				insn_.addressRegs |= regBit(index);
			if (base == 5 && mod_ == 0)
				disp = 4; // no base, disp32
			else
				insn_.addressRegs |= regBit(base | ((rex_ & 1u) << 3));
		} else if (rm_ == 5 && mod_ == 0) {
			disp = 4; // RIP-relative: an address that no register changes
		} else {
			insn_.addressRegs |= regBit(rm_ | ((rex_ & 1u) << 3));
		}
		return in_.skip(disp);
	}

	// Without REX, byte registers 4..7 are AH, CH, DH, BH: parts of rax..rbx.
	unsigned byteReg(unsigned r, bool byteOp) const { return byteOp && rex_ == 0 && r >= 4 && r < 8 ? r - 4 : r; }
	unsigned regField(bool byteOp = false) const { return byteReg(reg_ | ((rex_ & 4u) << 1), byteOp); }
	unsigned rmField(bool byteOp = false) const { return byteReg(rm_ | ((rex_ & 1u) << 3), byteOp); }
	unsigned opcodeReg(uint8_t op, bool byteOp = false) const { return byteReg((op & 7u) | ((rex_ & 1u) << 3), byteOp); }
	// An 8- or 16-bit destination keeps the rest of the register: the result depends on it too.
	bool narrow(bool byteOp) const { return byteOp || (opsize_ && !(rex_ & 8)); }
	size_t immSize() const { return opsize_ ? 2 : 4; }

	void readReg(unsigned r) { insn_.regsRead |= regBit(r); }
	void writeReg(unsigned r, bool partial)
	{
		insn_.regsWritten |= regBit(r);
		if (partial)
			readReg(r);
	}
	void readRm(bool byteOp)
	{
		if (memory_)
			insn_.readsMemory = true;
		else
			readReg(rmField(byteOp));
	}
	void writeRm(bool byteOp)
	{
		if (memory_) {
			insn_.writesMemory = true;
			insn_.atomic = insn_.atomic || lock_;
		} else {
			writeReg(rmField(byteOp), narrow(byteOp));
		}
	}
	void rmwRm(bool byteOp)
	{
		readRm(byteOp);
		writeRm(byteOp);
	}
	void flags(bool writes, bool reads = false)
	{
		insn_.writesFlags = insn_.writesFlags || writes;
		insn_.readsFlags = insn_.readsFlags || reads;
	}
	bool relative(size_t n, Flow flow)
	{
		insn_.flow = flow;
		hasRel_ = true;
		return in_.signedValue(n, rel_);
	}
	bool stop(size_t extra = 0)
	{
		insn_.flow = Flow::Stop;
		return in_.skip(extra);
	}

	// ADD OR ADC SBB AND SUB XOR CMP in the six forms of opcodes 00..3D.
	bool alu(uint8_t op)
	{
		unsigned kind = op >> 3;
		bool byteOp = !(op & 1);
		bool writes = kind != 7; // CMP
		flags(true, kind == 2 || kind == 3);
		switch (op & 7) {
		case 0: case 1: case 2: case 3: {
			if (!modrm())
				return false;
			bool toReg = op & 2;
			readRm(byteOp);
			readReg(regField(byteOp));
			if (writes) {
				if (toReg)
					writeReg(regField(byteOp), narrow(byteOp));
				else
					writeRm(byteOp);
			}
			// xor r,r and sub r,r give 0 whatever r held (sbb r,r depends on CF only).
			if (!memory_ && rmField(byteOp) == regField(byteOp) && (kind == 3 || kind == 5 || kind == 6))
				insn_.regsRead &= static_cast<RegMask>(~regBit(regField(byteOp)));
			return true;
		}
		case 4:
			readReg(kRax);
			if (writes)
				writeReg(kRax, true);
			return in_.skip(1);
		default:
			readReg(kRax);
			if (writes)
				writeReg(kRax, narrow(false));
			return in_.skip(immSize());
		}
	}

	// 80, 81, 83: ALU operation /reg on r/m with an immediate.
	bool group1(uint8_t op)
	{
		if (!modrm())
			return false;
		bool byteOp = op == 0x80;
		flags(true, reg_ == 2 || reg_ == 3);
		if (reg_ == 7)
			readRm(byteOp);
		else
			rmwRm(byteOp);
		return in_.skip(op == 0x81 ? immSize() : 1);
	}

	// C0 C1 D0..D3: rotates and shifts of r/m by an immediate, by 1 or by CL.
	bool shift(uint8_t op)
	{
		if (!modrm())
			return false;
		bool byteOp = !(op & 1);
		rmwRm(byteOp);
		flags(true, reg_ == 2 || reg_ == 3); // RCL, RCR
		if (op == 0xd2 || op == 0xd3)
			readReg(kRcx);
		return in_.skip(op == 0xc0 || op == 0xc1 ? 1 : 0);
	}

	// F6 F7: TEST with an immediate, NOT, NEG, MUL, IMUL, DIV, IDIV.
	bool group3(uint8_t op)
	{
		if (!modrm())
			return false;
		bool byteOp = op == 0xf6;
		switch (reg_) {
		case 0: case 1:
			readRm(byteOp);
			flags(true);
			return in_.skip(byteOp ? 1 : immSize());
		case 2:
			rmwRm(byteOp);
			return true;
		case 3:
			rmwRm(byteOp);
			flags(true);
			return true;
		default:
			readRm(byteOp);
			readReg(kRax);
			if (reg_ >= 6 && !byteOp) // DIV, IDIV divide rDX:rAX
				readReg(kRdx);
			writeReg(kRax, narrow(byteOp));
			if (!byteOp)
				writeReg(kRdx, narrow(false));
			flags(true);
			return true;
		}
	}

	// FE FF: INC, DEC, indirect CALL and JMP, PUSH.
	bool group45(uint8_t op)
	{
		if (!modrm())
			return false;
		bool byteOp = op == 0xfe;
		if (reg_ <= 1) {
			rmwRm(byteOp);
			flags(true);
			return true;
		}
		if (byteOp)
			return false;
		switch (reg_) {
		case 2:
			readRm(false);
			insn_.flow = Flow::Call;
			return true;
		case 4:
			readRm(false);
			insn_.flow = Flow::Indirect;
			return true;
		case 6:
			readRm(false);
			push();
			return true;
		case 7:
			return false;
		default:
			return stop(); // far call, far jmp
		}
	}

	void push()
	{
		insn_.writesMemory = true;
		insn_.addressRegs |= regBit(kRsp);
		readReg(kRsp);
		writeReg(kRsp, false);
	}

	void pop()
	{
		insn_.readsMemory = true;
		insn_.addressRegs |= regBit(kRsp);
		readReg(kRsp);
		writeReg(kRsp, false);
	}

	// The opcode maps, in x86_opcodes.cpp.
	bool oneByte(uint8_t op);
	bool twoByte();

	Cursor in_;
	Instruction insn_;
	bool opsize_ = false, addrsize_ = false, lock_ = false, rep_ = false;
	uint8_t rex_ = 0;
	uint8_t mod_ = 0, reg_ = 0, rm_ = 0;
	bool memory_ = false;
	bool hasRel_ = false;
	int64_t rel_ = 0;
};

} // namespace spindle::sched::sampling::detail
