// The one- and two-byte opcode maps of the decoder (x86_decoder_detail.h): what each opcode
// reads, writes and does to control flow. What a spin loop can contain is decoded; the rest
// (string, x87, SSE/AVX, VEX/EVEX) fails to decode, which the classifier treats as "not a spin".

#include "sched/sampling/x86_decoder_detail.h"

namespace spindle::sched::sampling::detail {

bool Decoder::oneByte(uint8_t op)
{
	if (op < 0x40 && (op & 7) < 6)
		return alu(op);
	if (op >= 0x50 && op <= 0x57) {
		readReg(opcodeReg(op));
		push();
		return true;
	}
	if (op >= 0x58 && op <= 0x5f) {
		pop();
		writeReg(opcodeReg(op), false);
		return true;
	}
	if (op >= 0x70 && op <= 0x7f) {
		flags(false, true);
		return relative(1, Flow::Branch);
	}
	if (op >= 0x91 && op <= 0x97) {
		unsigned r = opcodeReg(op);
		readReg(r), readReg(kRax), writeReg(r, false), writeReg(kRax, false);
		return true;
	}
	if (op >= 0xb0 && op <= 0xb7) {
		writeReg(opcodeReg(op, true), true);
		return in_.skip(1);
	}
	if (op >= 0xb8 && op <= 0xbf) {
		writeReg(opcodeReg(op), narrow(false));
		return in_.skip(rex_ & 8 ? 8 : immSize());
	}
	switch (op) {
	case 0x63: // MOVSXD r, r/m32
		if (!modrm())
			return false;
		readRm(false);
		writeReg(regField(), false);
		return true;
	case 0x68:
		push();
		return in_.skip(immSize());
	case 0x6a:
		push();
		return in_.skip(1);
	case 0x69: case 0x6b: // IMUL r, r/m, imm
		if (!modrm())
			return false;
		readRm(false);
		writeReg(regField(), narrow(false));
		flags(true);
		return in_.skip(op == 0x69 ? immSize() : 1);
	case 0x80: case 0x81: case 0x83:
		return group1(op);
	case 0x84: case 0x85: // TEST r/m, r
		if (!modrm())
			return false;
		readRm(op == 0x84);
		readReg(regField(op == 0x84));
		flags(true);
		return true;
	case 0x86: case 0x87: { // XCHG r/m, r: locked by itself when r/m is memory
		if (!modrm())
			return false;
		bool byteOp = op == 0x86;
		rmwRm(byteOp);
		readReg(regField(byteOp));
		writeReg(regField(byteOp), narrow(byteOp));
		insn_.atomic = memory_;
		return true;
	}
	case 0x88: case 0x89: // MOV r/m, r
		if (!modrm())
			return false;
		readReg(regField(op == 0x88));
		writeRm(op == 0x88);
		return true;
	case 0x8a: case 0x8b: // MOV r, r/m
		if (!modrm())
			return false;
		readRm(op == 0x8a);
		writeReg(regField(op == 0x8a), narrow(op == 0x8a));
		return true;
	case 0x8c: // MOV r/m, Sreg
		if (!modrm())
			return false;
		writeRm(false);
		return true;
	case 0x8d: // LEA: computes the address, touches no memory
		if (!modrm() || !memory_)
			return false;
		insn_.regsRead |= insn_.addressRegs;
		insn_.addressRegs = 0;
		writeReg(regField(), narrow(false));
		return true;
	case 0x8f: // POP r/m
		if (!modrm() || reg_ != 0)
			return false;
		pop();
		writeRm(false);
		return true;
	case 0x90:
		if (rex_ & 1) { // XCHG r8, rax
			readReg(8), readReg(kRax), writeReg(8, false), writeReg(kRax, false);
			return true;
		}
		insn_.pause = rep_;
		return true;
	case 0x98: // CBW, CWDE, CDQE
		readReg(kRax);
		writeReg(kRax, narrow(false));
		return true;
	case 0x99: // CWD, CDQ, CQO
		readReg(kRax);
		writeReg(kRdx, narrow(false));
		return true;
	case 0x9c:
		flags(false, true);
		push();
		return true;
	case 0x9d:
		flags(true);
		pop();
		return true;
	case 0x9e: // SAHF
		readReg(kRax);
		flags(true);
		return true;
	case 0x9f: // LAHF
		flags(false, true);
		writeReg(kRax, true);
		return true;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3: // MOV between rAX and an absolute address
		if (op < 0xa2) {
			insn_.readsMemory = true;
			writeReg(kRax, narrow(op == 0xa0));
		} else {
			insn_.writesMemory = true;
			readReg(kRax);
		}
		return in_.skip(addrsize_ ? 4 : 8);
	case 0xa8: case 0xa9:
		readReg(kRax);
		flags(true);
		return in_.skip(op == 0xa8 ? 1 : immSize());
	case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
		return shift(op);
	case 0xc2:
		insn_.flow = Flow::Return;
		return in_.skip(2);
	case 0xc3:
		insn_.flow = Flow::Return;
		return true;
	case 0xc6: case 0xc7: // MOV r/m, imm (other /reg values are XABORT/XBEGIN)
		if (!modrm() || reg_ != 0)
			return false;
		writeRm(op == 0xc6);
		return in_.skip(op == 0xc6 ? 1 : immSize());
	case 0xc9: // LEAVE
		readReg(5);
		insn_.readsMemory = true;
		insn_.addressRegs |= regBit(5);
		writeReg(kRsp, false);
		writeReg(5, false);
		return true;
	case 0xca:
		return stop(2);
	case 0xcb: case 0xcc: case 0xcf: case 0xf1: case 0xf4: case 0xec: case 0xed: case 0xee: case 0xef:
		return stop();
	case 0xcd: case 0xe4: case 0xe5: case 0xe6: case 0xe7:
		return stop(1);
	case 0xe0: case 0xe1: case 0xe2: // LOOPNE, LOOPE, LOOP
		readReg(kRcx);
		writeReg(kRcx, false);
		flags(false, op != 0xe2);
		return relative(1, Flow::Branch);
	case 0xe3: // JRCXZ
		readReg(kRcx);
		return relative(1, Flow::Branch);
	case 0xe8:
		return relative(4, Flow::Call);
	case 0xe9:
		return relative(4, Flow::Jump);
	case 0xeb:
		return relative(1, Flow::Jump);
	case 0xf5: // CMC
		flags(true, true);
		return true;
	case 0xf8: case 0xf9: // CLC, STC
		flags(true);
		return true;
	case 0xfa: case 0xfb: case 0xfc: case 0xfd: // CLI STI CLD STD: nothing a Jcc tests
		return true;
	case 0xf6: case 0xf7:
		return group3(op);
	case 0xfe: case 0xff:
		return group45(op);
	default:
		return false; // string, x87, VEX/EVEX, and what 64-bit mode does not have
	}
}

bool Decoder::twoByte()
{
	uint8_t op;
	if (!in_.byte(op))
		return false;
	if (op >= 0x80 && op <= 0x8f) {
		flags(false, true);
		return relative(4, Flow::Branch);
	}
	if (op >= 0x40 && op <= 0x4f) { // CMOVcc
		if (!modrm())
			return false;
		readRm(false);
		readReg(regField());
		writeReg(regField(), false);
		flags(false, true);
		return true;
	}
	if (op >= 0x90 && op <= 0x9f) { // SETcc r/m8
		if (!modrm())
			return false;
		writeRm(true);
		flags(false, true);
		return true;
	}
	if (op >= 0xc8) { // BSWAP
		unsigned r = opcodeReg(op);
		readReg(r);
		writeReg(r, false);
		return true;
	}
	switch (op) {
	case 0x00: case 0x20: case 0x21: case 0x22: case 0x23: // system table and CR/DR moves
		return modrm() && stop();
	case 0x01:
		if (!modrm())
			return false;
		if (mod_ == 3 && reg_ == 7 && rm_ == 1) { // RDTSCP
			writeReg(kRax, false), writeReg(kRdx, false), writeReg(kRcx, false);
			return true;
		}
		return stop();
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x09: case 0x0b: case 0x30: case 0x32:
	case 0x34: case 0x35:
		return stop(); // SYSCALL, CLTS, SYSRET, INVD, WBINVD, UD2, WRMSR, RDMSR, SYSENTER, SYSEXIT
	case 0x0d: case 0x18: case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d: case 0x1e: case 0x1f:
		return modrm(); // prefetches and hint NOPs (ENDBR64 too): no architectural effect
	case 0x31: // RDTSC
		writeReg(kRax, false), writeReg(kRdx, false);
		return true;
	case 0xa2: // CPUID
		readReg(kRax), readReg(kRcx);
		writeReg(kRax, false), writeReg(kRbx, false), writeReg(kRcx, false), writeReg(kRdx, false);
		return true;
	case 0xa3: case 0xab: case 0xb3: case 0xbb: // BT, BTS, BTR, BTC r/m, r
		if (!modrm())
			return false;
		if (op == 0xa3)
			readRm(false);
		else
			rmwRm(false);
		readReg(regField());
		flags(true);
		return true;
	case 0xa4: case 0xa5: case 0xac: case 0xad: // SHLD, SHRD
		if (!modrm())
			return false;
		rmwRm(false);
		readReg(regField());
		if (op & 1)
			readReg(kRcx);
		flags(true);
		return in_.skip(op & 1 ? 0 : 1);
	case 0xae: // fences; the memory forms (FXSAVE, CLFLUSH, ...) are not decoded
		return modrm() && mod_ == 3 && reg_ >= 5;
	case 0xaf: case 0xb8: case 0xbc: case 0xbd: // IMUL, POPCNT, BSF/TZCNT, BSR/LZCNT
		if (!modrm() || (op == 0xb8 && !rep_))
			return false;
		readRm(false);
		if (op == 0xaf)
			readReg(regField());
		writeReg(regField(), narrow(false));
		flags(true);
		return true;
	case 0xb0: case 0xb1: case 0xc0: case 0xc1: { // CMPXCHG, XADD
		if (!modrm())
			return false;
		bool byteOp = !(op & 1);
		rmwRm(byteOp);
		readReg(regField(byteOp));
		if (op >= 0xc0)
			writeReg(regField(byteOp), narrow(byteOp));
		else
			readReg(kRax), writeReg(kRax, narrow(byteOp));
		flags(true);
		return true;
	}
	case 0xb6: case 0xb7: case 0xbe: case 0xbf: // MOVZX, MOVSX
		if (!modrm())
			return false;
		readRm(!(op & 1));
		writeReg(regField(), narrow(false));
		return true;
	case 0xba: // BT, BTS, BTR, BTC r/m, imm8
		if (!modrm() || reg_ < 4)
			return false;
		if (reg_ == 4)
			readRm(false);
		else
			rmwRm(false);
		flags(true);
		return in_.skip(1);
	case 0xc7:
		if (!modrm())
			return false;
		if (reg_ == 1 && memory_) { // CMPXCHG8B/16B
			rmwRm(false);
			readReg(kRax), readReg(kRdx), readReg(kRbx), readReg(kRcx);
			writeReg(kRax, false), writeReg(kRdx, false);
			flags(true);
			return true;
		}
		if ((reg_ == 6 || reg_ == 7) && !memory_) { // RDRAND, RDSEED
			writeReg(rmField(), narrow(false));
			flags(true);
			return true;
		}
		return false;
	default:
		return false; // SSE/AVX, the three-byte maps and the rest
	}
}

} // namespace spindle::sched::sampling::detail
