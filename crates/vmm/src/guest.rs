//! The guest program: the few lines of x86-64 machine code a virtual CPU runs, written once with
//! an assembler (iced-x86's `code_asm`) and shown to the reader by decoding those same bytes, so
//! the listing in the notebook is exactly what the vCPU executes.
//!
//! The guest talks to us only through `out` on an I/O port: each `out` leaves the guest (a VM
//! exit), our side reads the value and decides when to let the guest go on.
//!
//! Every guest starts in ring 0, the CPU's most privileged level, where an operating system's
//! kernel runs. The compute loop can also drop to ring 3 first, where applications run: under
//! KVM-PVM that is the difference between KVM emulating each instruction and the CPU running it.

use super::layout;
use iced_x86::code_asm::{CodeAssembler, CodeLabel, eax, ebx, ecx, ptr, rax, rcx};
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use virtlab_core::Error;
use virtlab_core::Result;

/// Where the code sits in guest memory; the vCPU starts here.
pub const CODE_ADDRESS: u64 = 0x8000;
/// The port on which the guest reports a number (an iteration, or the start of a timed loop).
pub const REPORT_PORT: u16 = 0x10;
/// Most iterations a loop guest may run (the counter is a 32-bit register).
pub const MAX_ITERATIONS: u32 = 1_000_000_000;

/// A privilege level of the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Ring {
    /// Ring 0: kernel mode, where every guest starts (and the essay loop stays).
    Kernel,
    /// Ring 3: user mode, where an operating system runs its applications.
    User,
}

impl Ring {
    /// The level's number, 0 or 3.
    pub fn number(self) -> u8 {
        match self {
            Ring::Kernel => 0,
            Ring::User => 3,
        }
    }
}

/// A guest program: its machine code and a commented listing of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    /// What the program does, in a few words (the listing's title).
    pub title: String,
    code: Vec<u8>,
    comments: Vec<&'static str>,
}

impl Guest {
    /// The essay's loop: for each of `iterations`, report the iteration number on
    /// [`REPORT_PORT`] (our side prints the line and pauses), then halt. With `fault_at`, the
    /// guest executes `ud2` instead of reporting that iteration (as a thread panics instead of
    /// printing it): with no interrupt table to handle the fault, the CPU gives up (a triple
    /// fault) and KVM tells us it shut down.
    pub fn essay_loop(iterations: u32, fault_at: Option<u32>) -> Result<Guest> {
        virtlab_core::error::check_range("the guest's iterations", iterations, 1, MAX_ITERATIONS)?;
        if let Some(at) = fault_at
            && at >= iterations
        {
            return Err(Error::invalid(
                "the fault iteration",
                at,
                format!("choose an iteration below {iterations} (they count from 0)"),
            ));
        }
        let title = match fault_at {
            Some(at) => format!("essay loop, {iterations} iterations, triple fault at {at}"),
            None => format!("essay loop, {iterations} iterations"),
        };
        let mut p = Program::new()?;
        let mut next = p.asm.create_label();
        p.emit("iteration = 0", |a| a.xor(ebx, ebx))?;
        p.label(&mut next)?;
        if let Some(at) = fault_at {
            let mut go_on = p.asm.create_label();
            p.emit("the planned fault's iteration?", |a| a.cmp(ebx, at))?;
            p.emit("no: go on", |a| a.jne(go_on))?;
            p.emit("yes: invalid opcode, no IDT: triple fault", |a| a.ud2())?;
            p.label(&mut go_on)?;
        }
        p.emit("value to report", |a| a.mov(eax, ebx))?;
        p.emit("report it: the VM exits to us", |a| {
            a.out(u32::from(REPORT_PORT), eax)
        })?;
        p.emit("iteration + 1", |a| a.inc(ebx))?;
        p.emit("all done?", |a| a.cmp(ebx, iterations))?;
        p.emit("no: next iteration", |a| a.jne(next))?;
        p.emit("yes: stop this CPU", |a| a.hlt())?;
        p.finish(title)
    }

    /// A fixed compute loop of `count` rounds of `dec rcx; jnz` (the same two instructions
    /// [`native_compute`] runs on the host), framed by two reports so our side can time it:
    /// it reports 0 before the loop and 1 after it, then stops. In [`Ring::User`] the guest
    /// first leaves ring 0 the way a kernel starts an application (`iretq` to a ring-3 code
    /// segment); ring 3 may not `hlt`, so it then waits in `jmp $` for our side to drop the VM.
    pub fn compute(count: u32, ring: Ring) -> Result<Guest> {
        virtlab_core::error::check_range("the compute loop's count", count, 1, MAX_ITERATIONS)?;
        let mut p = Program::new()?;
        let mut spin = p.asm.create_label();
        if ring == Ring::User {
            let mut user = p.asm.create_label();
            p.emit("ring 3's stack segment", |a| {
                a.push(i32::from(layout::USER_DATA_SELECTOR))
            })?;
            p.emit("ring 3's stack pointer", |a| {
                a.push(layout::STACK_TOP as i32)
            })?;
            p.emit("flags: I/O level 3, so ring 3 may `out`", |a| {
                a.push(layout::USER_RFLAGS as i32)
            })?;
            p.emit("ring 3's code segment", |a| {
                a.push(i32::from(layout::USER_CODE_SELECTOR))
            })?;
            p.emit("where ring 3 starts: the next line", |a| {
                a.lea(rax, ptr(user))
            })?;
            p.emit("(pushed)", |a| a.push(rax))?;
            p.emit("return to ring 3, as a kernel starts a program", |a| {
                a.iretq()
            })?;
            p.label(&mut user)?;
        }
        p.emit("report 0: loop starts", |a| a.xor(eax, eax))?;
        p.emit("the VM exits to us", |a| a.out(u32::from(REPORT_PORT), eax))?;
        p.emit("rounds to run", |a| a.mov(ecx, count))?;
        p.label(&mut spin)?;
        p.emit("one round", |a| a.dec(rcx))?;
        p.emit("again until zero", |a| a.jnz(spin))?;
        p.emit("report 1: loop done", |a| a.inc(eax))?;
        p.emit("the VM exits to us", |a| a.out(u32::from(REPORT_PORT), eax))?;
        match ring {
            Ring::Kernel => p.emit("stop this CPU", |a| a.hlt())?,
            Ring::User => {
                let mut wait = p.asm.create_label();
                p.label(&mut wait)?;
                p.emit("ring 3 may not hlt: wait to be stopped", |a| a.jmp(wait))?;
            }
        }
        p.finish(format!(
            "compute loop, {count} rounds, in ring {}",
            ring.number()
        ))
    }

    /// A guest that reports iterations 0 to `at` − 1 and then loops forever without another
    /// exit: only our side can stop it (a signal to its vCPU thread).
    pub fn runaway(at: u32) -> Result<Guest> {
        virtlab_core::error::check_range("the runaway's iteration", at, 0, MAX_ITERATIONS)?;
        let mut p = Program::new()?;
        let mut next = p.asm.create_label();
        let mut forever = p.asm.create_label();
        p.emit("iteration = 0", |a| a.xor(ebx, ebx))?;
        p.label(&mut next)?;
        p.emit("the iteration it runs away at?", |a| a.cmp(ebx, at))?;
        p.emit("yes: run away", |a| a.je(forever))?;
        p.emit("value to report", |a| a.mov(eax, ebx))?;
        p.emit("report it: the VM exits to us", |a| {
            a.out(u32::from(REPORT_PORT), eax)
        })?;
        p.emit("iteration + 1", |a| a.inc(ebx))?;
        p.emit("next iteration", |a| a.jmp(next))?;
        p.label(&mut forever)?;
        p.emit("jump to itself, forever", |a| a.jmp(forever))?;
        p.finish(format!(
            "runaway: reports {at} iterations, then never exits"
        ))
    }

    /// The machine code, to be loaded at [`CODE_ADDRESS`].
    pub fn code(&self) -> &[u8] {
        &self.code
    }

    /// The program as address, bytes, instruction and comment, one line each, decoded from
    /// [`Guest::code`].
    pub fn listing(&self) -> String {
        let mut text = format!("; {}\n", self.title);
        let mut decoder = Decoder::with_ip(64, &self.code, CODE_ADDRESS, DecoderOptions::NONE);
        let mut formatter = IntelFormatter::new();
        formatter.options_mut().set_hex_prefix("0x");
        formatter.options_mut().set_hex_suffix("");
        formatter.options_mut().set_uppercase_hex(false);
        formatter
            .options_mut()
            .set_space_after_operand_separator(true);
        formatter.options_mut().set_branch_leading_zeros(false);
        formatter.options_mut().set_show_branch_size(false);
        let lines: Vec<(u64, String, String)> = decoder
            .iter()
            .map(|instruction| {
                let start = (instruction.ip() - CODE_ADDRESS) as usize;
                let bytes = &self.code[start..start + instruction.len()];
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let mut asm = String::new();
                formatter.format(&instruction, &mut asm);
                (instruction.ip(), hex.join(" "), asm)
            })
            .collect();
        let hex_width = lines.iter().map(|l| l.1.len()).max().unwrap_or(0);
        let asm_width = lines.iter().map(|l| l.2.len()).max().unwrap_or(0);
        for (index, (address, hex, asm)) in lines.iter().enumerate() {
            let comment = self.comments.get(index).copied().unwrap_or("");
            text += &format!("{address:04x}  {hex:<hex_width$}  {asm:<asm_width$}  ; {comment}\n");
        }
        text
    }

    /// How many instructions the program has.
    pub fn instructions(&self) -> usize {
        self.comments.len()
    }
}

/// The same loop as [`Guest::compute`] (`dec rcx; jnz`), run natively on this CPU.
pub fn native_compute(count: u32) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the loop only decrements the register it is given until zero; no memory,
        // no stack, flags are declared clobbered by default.
        unsafe {
            std::arch::asm!(
                "2:",
                "dec {n}",
                "jnz 2b",
                n = inout(reg) u64::from(count) => _,
                options(nomem, nostack),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut n = u64::from(count);
        while std::hint::black_box(n) != 0 {
            n -= 1;
        }
    }
}

/// A program being written: the assembler plus one comment per emitted instruction.
struct Program {
    asm: CodeAssembler,
    comments: Vec<&'static str>,
}

impl Program {
    fn new() -> Result<Program> {
        Ok(Program {
            asm: CodeAssembler::new(64).map_err(assembler_error)?,
            comments: Vec::new(),
        })
    }

    /// Emits one instruction with its comment.
    fn emit(
        &mut self,
        comment: &'static str,
        instruction: impl FnOnce(&mut CodeAssembler) -> std::result::Result<(), iced_x86::IcedError>,
    ) -> Result<()> {
        instruction(&mut self.asm).map_err(assembler_error)?;
        self.comments.push(comment);
        Ok(())
    }

    fn label(&mut self, label: &mut CodeLabel) -> Result<()> {
        self.asm.set_label(label).map_err(assembler_error)
    }

    fn finish(mut self, title: String) -> Result<Guest> {
        let code = self.asm.assemble(CODE_ADDRESS).map_err(assembler_error)?;
        Ok(Guest {
            title,
            code,
            comments: self.comments,
        })
    }
}

fn assembler_error(e: iced_x86::IcedError) -> Error {
    Error::bug(format!("the guest program did not assemble: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(guest: &Guest) -> Vec<String> {
        let mut formatter = IntelFormatter::new();
        Decoder::with_ip(64, guest.code(), CODE_ADDRESS, DecoderOptions::NONE)
            .iter()
            .map(|i| {
                let mut s = String::new();
                formatter.format(&i, &mut s);
                s
            })
            .collect()
    }

    #[test]
    fn essay_loop_reports_each_iteration_then_halts() {
        let guest = Guest::essay_loop(3, None).unwrap();
        let asm = decoded(&guest);
        assert_eq!(asm.len(), guest.instructions());
        assert_eq!(asm[0], "xor ebx,ebx");
        assert_eq!(asm[2], "out 10h,eax");
        assert_eq!(asm.last().unwrap(), "hlt");
        assert!(!asm.iter().any(|s| s == "ud2"));
        // The listing's lines are the decoded bytes, with the comments in order.
        let listing = guest.listing();
        assert_eq!(listing.lines().count(), 1 + asm.len());
        assert!(listing.contains("out 0x10, eax"), "{listing}");
        assert!(listing.contains("; report it: the VM exits to us"));
        assert!(
            listing.contains("e7 10"),
            "out imm8 encodes as e7 10: {listing}"
        );
    }

    #[test]
    fn fault_variant_has_ud2_in_place_of_the_report() {
        let asm = decoded(&Guest::essay_loop(3, Some(1)).unwrap());
        let out = asm.iter().position(|s| s.starts_with("out")).unwrap();
        let ud2 = asm.iter().position(|s| s == "ud2").unwrap();
        assert!(ud2 < out);
        assert!(asm.contains(&"cmp ebx,1".to_string()));
    }

    #[test]
    fn runaway_and_compute_have_the_loops_they_claim() {
        let runaway = Guest::runaway(1).unwrap();
        let asm = decoded(&runaway);
        assert!(asm.last().unwrap().starts_with("jmp"));
        assert_eq!(&runaway.code()[runaway.code().len() - 2..], &[0xeb, 0xfe]);
        let compute = decoded(&Guest::compute(5, Ring::Kernel).unwrap());
        assert!(compute.iter().any(|s| s == "dec rcx"));
        assert_eq!(compute.iter().filter(|s| s.starts_with("out")).count(), 2);
        assert!(!compute.iter().any(|s| s == "iretq"));
    }

    #[test]
    fn the_ring_3_loop_returns_to_ring_3_before_its_first_report() {
        let guest = Guest::compute(5, Ring::User).unwrap();
        let asm = decoded(&guest);
        let iretq = asm.iter().position(|s| s == "iretq").unwrap();
        let first_out = asm.iter().position(|s| s.starts_with("out")).unwrap();
        assert!(iretq < first_out, "{asm:?}");
        assert_eq!(asm[0], "push 23h", "ring 3's stack segment first");
        assert!(asm.contains(&"push 3002h".to_string()), "{asm:?}");
        assert!(!asm.iter().any(|s| s == "hlt"), "ring 3 may not hlt");
        // The address pushed for iretq is the instruction right after it.
        let ends: Vec<u64> = Decoder::with_ip(64, guest.code(), CODE_ADDRESS, DecoderOptions::NONE)
            .iter()
            .map(|i| i.next_ip())
            .collect();
        let lea = Decoder::with_ip(64, guest.code(), CODE_ADDRESS, DecoderOptions::NONE)
            .iter()
            .find(|i| i.mnemonic() == iced_x86::Mnemonic::Lea)
            .unwrap();
        assert_eq!(lea.memory_displacement64(), ends[iretq]);
        assert_eq!(guest.listing().lines().count(), 1 + guest.instructions());
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Guest::essay_loop(0, None).is_err());
        let e = Guest::essay_loop(3, Some(3)).unwrap_err();
        assert!(e.problem().contains("fault iteration cannot be 3"));
        assert!(Guest::compute(0, Ring::User).is_err());
    }

    #[test]
    fn native_compute_runs() {
        native_compute(1000);
    }
}
