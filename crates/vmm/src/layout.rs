//! What the guest's memory holds before its first instruction: a segment table (GDT) and page
//! tables that map guest-virtual addresses one to one onto guest-physical ones, in 2 MiB pages.
//! A 64-bit CPU cannot run without paging, so even the smallest guest needs these; a real
//! firmware or boot loader would build them, here we do.
//!
//! Layout (guest-physical addresses):
//!
//! | address | what |
//! |---|---|
//! | `0x0500` | GDT: null, 64-bit code, data (ring 0), then the same two for ring 3 |
//! | `0x1000` | PML4 (level 4 page table) |
//! | `0x2000` | PDPT (level 3) |
//! | `0x3000` | page directory: 2 MiB pages |
//! | `0x4000`…`0x8000` | stack (grows down from the code) |
//! | `0x8000` | code ([`super::guest::CODE_ADDRESS`]) |

use super::guest::CODE_ADDRESS;

/// Where the GDT sits.
pub const GDT_ADDRESS: u64 = 0x500;
/// The level-4 page table (what CR3 points at).
pub const PML4_ADDRESS: u64 = 0x1000;
/// The level-3 page table.
pub const PDPT_ADDRESS: u64 = 0x2000;
/// The page directory, whose entries map 2 MiB pages.
pub const PD_ADDRESS: u64 = 0x3000;
/// The stack pointer's start (the stack grows down, below the code).
pub const STACK_TOP: u64 = CODE_ADDRESS;
/// The size of one large page (a page-directory entry with the PS bit).
pub const LARGE_PAGE: u64 = 2 << 20;
/// The least guest memory: room for the tables, the stack and 4 KiB of code.
pub const MIN_MEMORY: u64 = 64 << 10;
/// The most guest memory: what one page directory maps (512 × 2 MiB).
pub const MAX_MEMORY: u64 = 512 * LARGE_PAGE;

/// Reads a guest memory size: bytes, or a number with KiB, MiB or GiB (`2MiB`, `64 KiB`).
/// Only the syntax is checked here; `Vm::new` checks the bounds.
pub fn parse_memory(text: &str) -> virtlab_core::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" => 10,
        "MiB" | "M" => 20,
        "GiB" | "G" => 30,
        _ => 64,
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|_| shift < 64)
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| {
            virtlab_core::Error::invalid(
                "the guest memory",
                format!("{text:?}"),
                "write a size such as 2MiB, 512KiB or 1GiB (64 KiB to 1 GiB)",
            )
        })
}

/// The code segment's selector (GDT entry 1).
pub const CODE_SELECTOR: u16 = 0x08;
/// The data segments' selector (GDT entry 2).
pub const DATA_SELECTOR: u16 = 0x10;
/// Ring 3's code segment: GDT entry 3, requested privilege level 3 (the low two bits).
pub const USER_CODE_SELECTOR: u16 = 0x18 | 3;
/// Ring 3's data (and stack) segment: GDT entry 4, requested privilege level 3.
pub const USER_DATA_SELECTOR: u16 = 0x20 | 3;
/// RFLAGS for ring 3: bit 1 (always set) and I/O privilege level 3 (bits 12-13), which lets
/// ring-3 code use `out`, the guest's only way to report.
pub const USER_RFLAGS: u64 = 0x3002;

// Control-register bits for 64-bit long mode with paging.
/// CR0: protected mode.
pub const CR0_PE: u64 = 1 << 0;
/// CR0: monitor the coprocessor (FPU state switching).
pub const CR0_MP: u64 = 1 << 1;
/// CR0: extension type (always set on modern CPUs).
pub const CR0_ET: u64 = 1 << 4;
/// CR0: FPU errors as exceptions.
pub const CR0_NE: u64 = 1 << 5;
/// CR0: write protection honoured in kernel mode.
pub const CR0_WP: u64 = 1 << 16;
/// CR0: alignment-check mask.
pub const CR0_AM: u64 = 1 << 18;
/// CR0: paging on.
pub const CR0_PG: u64 = 1 << 31;
/// CR4: PAE paging, which long mode requires.
pub const CR4_PAE: u64 = 1 << 5;
/// EFER: long mode enabled.
pub const EFER_LME: u64 = 1 << 8;
/// EFER: long mode active.
pub const EFER_LMA: u64 = 1 << 10;

// The pieces do not overlap, and the smallest memory holds them and 4 KiB of code.
const _: () = {
    assert!(GDT_ADDRESS + 8 * 5 <= PML4_ADDRESS);
    assert!(PD_ADDRESS + 4096 <= STACK_TOP);
    assert!(CODE_ADDRESS + 4096 <= MIN_MEMORY);
};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
/// Ring 3 may use the page (without it, only ring 0 may). Ring-0 code is unaffected, as CR4
/// turns on neither SMEP nor SMAP.
const USER: u64 = 1 << 2;
const PAGE_SIZE_BIT: u64 = 1 << 7;

/// The GDT's five 8-byte descriptors: null, then for ring 0 (privilege 0 in bits 45-46) 64-bit
/// code (L=1) and data, then the same two for ring 3 (privilege 3). Base 0, limit 4 GiB; in
/// long mode only the code segments' L bits, the privilege levels and the present bits really
/// matter.
pub fn gdt() -> [u64; 5] {
    [
        0,
        0x00af_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0x00af_fb00_0000_ffff,
        0x00cf_f300_0000_ffff,
    ]
}

/// The page tables as (guest address, 8-byte entries): one PML4 entry, one PDPT entry, and one
/// 2 MiB page-directory entry per 2 MiB of guest memory, each mapping its own address, open to
/// ring 3 as to ring 0.
pub fn page_tables(memory_bytes: u64) -> Vec<(u64, Vec<u64>)> {
    let large_pages = memory_bytes.div_ceil(LARGE_PAGE).clamp(1, 512);
    let directory = (0..large_pages)
        .map(|i| (i * LARGE_PAGE) | PRESENT | WRITABLE | USER | PAGE_SIZE_BIT)
        .collect();
    vec![
        (PML4_ADDRESS, vec![PDPT_ADDRESS | PRESENT | WRITABLE | USER]),
        (PDPT_ADDRESS, vec![PD_ADDRESS | PRESENT | WRITABLE | USER]),
        (PD_ADDRESS, directory),
    ]
}

/// Follows the tables as the CPU would for a guest-virtual address; `None` when unmapped.
#[cfg(test)]
fn translate(tables: &[(u64, Vec<u64>)], virtual_address: u64) -> Option<u64> {
    let entry = |table: u64, index: u64| {
        tables
            .iter()
            .find(|(at, _)| *at == table)
            .and_then(|(_, entries)| entries.get(index as usize).copied())
            .filter(|e| e & PRESENT != 0)
    };
    let pml4e = entry(PML4_ADDRESS, (virtual_address >> 39) & 511)?;
    let pdpte = entry(pml4e & !0xfff, (virtual_address >> 30) & 511)?;
    let pde = entry(pdpte & !0xfff, (virtual_address >> 21) & 511)?;
    assert!(pde & PAGE_SIZE_BIT != 0, "only 2 MiB pages are used");
    Some((pde & !(LARGE_PAGE - 1) & !PAGE_SIZE_BIT) | (virtual_address & (LARGE_PAGE - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tables_map_every_address_to_itself() {
        let tables = page_tables(2 << 20);
        for address in [0, GDT_ADDRESS, CODE_ADDRESS, STACK_TOP - 8, (2 << 20) - 1] {
            assert_eq!(translate(&tables, address), Some(address));
        }
        assert_eq!(
            translate(&tables, 2 << 20),
            None,
            "past the memory: unmapped"
        );
        let big = page_tables(5 << 20);
        assert_eq!(big[2].1.len(), 3, "5 MiB needs three 2 MiB pages");
        assert_eq!(translate(&big, (5 << 20) + 7), Some((5 << 20) + 7));
    }

    #[test]
    fn the_smallest_memory_needs_one_large_page() {
        assert_eq!(page_tables(MIN_MEMORY)[2].1.len(), 1);
    }

    #[test]
    fn memory_sizes_are_parsed_with_units() {
        assert_eq!(parse_memory("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_memory(" 64 KiB ").unwrap(), 64 << 10);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        for bad in ["", "MiB", "2 TiB", "-1MiB", "1.5MiB", "99999999999999GiB"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn code_descriptors_are_64_bit() {
        for code in [gdt()[1], gdt()[3]] {
            assert_ne!(code & (1 << 53), 0, "L bit: 64-bit code");
            assert_eq!(code & (1 << 54), 0, "D bit must be clear when L is set");
            assert_ne!(code & (1 << 47), 0, "present");
            assert_ne!(code & (1 << 43), 0, "code, not data");
        }
    }

    #[test]
    fn each_selector_names_a_descriptor_of_its_own_ring() {
        let privilege = |descriptor: u64| (descriptor >> 45) & 3;
        for (selector, ring) in [
            (CODE_SELECTOR, 0),
            (DATA_SELECTOR, 0),
            (USER_CODE_SELECTOR, 3),
            (USER_DATA_SELECTOR, 3),
        ] {
            let descriptor = gdt()[usize::from(selector >> 3)];
            assert_eq!(privilege(descriptor), ring, "{selector:#x}");
            assert_eq!(
                u64::from(selector & 3),
                ring,
                "requested level {selector:#x}"
            );
        }
        assert_eq!((USER_RFLAGS >> 12) & 3, 3, "I/O privilege level 3");
    }

    #[test]
    fn every_table_entry_is_open_to_ring_3() {
        for (_, entries) in page_tables(4 << 20) {
            assert!(entries.iter().all(|e| e & USER != 0));
        }
    }
}
