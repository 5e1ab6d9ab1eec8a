//! Which SIMD instruction sets this CPU has, found in one place: chapter 0's inventory lists
//! them, the FMA peak loop and the matmul kernels use [`Isa::chosen`] (the widest, or the one
//! `VIRTLAB_ISA` names, so an AVX2 path can be measured on an AVX-512 machine), and their tests
//! run every one the CPU has.

use virtlab_core::{Error, Result};

/// Names the instruction set the matmul kernels must use: `avx512`, `avx2` or `portable`.
pub const ISA_ENV: &str = "VIRTLAB_ISA";

/// A SIMD instruction set a kernel can be written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 with FMA (`avx512f`): 512-bit registers, 8 f64 or 16 f32 per instruction.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 with FMA (`avx2`, `fma`): 256-bit registers, 4 f64 or 8 f32 per instruction.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    /// Plain Rust the compiler vectorises as it can: runs on any CPU (an ARM one, say).
    Portable,
}

impl Isa {
    /// The widest instruction set this CPU runs.
    pub fn detect() -> Isa {
        *Isa::available().last().unwrap_or(&Isa::Portable)
    }

    /// Every instruction set this CPU runs, narrowest first (always starting with portable).
    pub fn available() -> Vec<Isa> {
        let mut isas = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                isas.push(Isa::Avx2Fma);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                isas.push(Isa::Avx512);
            }
        }
        isas
    }

    /// The instruction set called `name` (`avx512`, `avx2`, `portable`), if this CPU runs it.
    pub fn parse(name: &str) -> Result<Isa> {
        let wanted = match name.trim().to_ascii_lowercase().as_str() {
            #[cfg(target_arch = "x86_64")]
            "avx512" => Isa::Avx512,
            #[cfg(target_arch = "x86_64")]
            "avx2" => Isa::Avx2Fma,
            "portable" => Isa::Portable,
            _ => {
                return Err(Error::invalid(
                    "the instruction set",
                    format!("'{name}'"),
                    "name one of avx512, avx2, portable (or unset VIRTLAB_ISA for the widest)",
                ));
            }
        };
        if !Isa::available().contains(&wanted) {
            return Err(Error::unavailable(
                format!("this CPU cannot run the {} kernels", wanted.name()),
                format!(
                    "choose one it has: {} (or unset VIRTLAB_ISA)",
                    Isa::available()
                        .iter()
                        .map(|i| i.short_name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(wanted)
    }

    /// The instruction set to compute with: the one `VIRTLAB_ISA` names (it must be one this CPU
    /// runs), else the widest.
    pub fn chosen() -> Result<Isa> {
        match std::env::var(ISA_ENV) {
            Ok(name) if !name.trim().is_empty() => Isa::parse(&name),
            _ => Ok(Isa::detect()),
        }
    }

    /// Its name as `VIRTLAB_ISA` takes it: `avx512`, `avx2`, `portable`.
    pub fn short_name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Its name as people read it: "AVX-512 FMA", "AVX2 FMA", "portable (…)".
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "AVX-512 FMA",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => "AVX2 FMA",
            Isa::Portable => "portable (compiler-vectorised multiply + add)",
        }
    }
}

/// The instruction-set extensions that decide the floating-point peak, as the CPU names them.
pub fn simd_features() -> Vec<String> {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, present) in [
            ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ] {
            if present {
                found.push(name.to_string());
            }
        }
    }
    #[cfg(target_arch = "aarch64")]
    found.push("neon".to_string());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widest_is_the_last_available_and_portable_is_always_there() {
        let available = Isa::available();
        assert_eq!(available[0], Isa::Portable);
        assert_eq!(Some(&Isa::detect()), available.last());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(Isa::detect(), Isa::Avx512);
            assert!(simd_features().contains(&"avx512f".to_string()));
        }
    }

    #[test]
    fn every_available_set_parses_by_its_short_name_and_others_are_refused() {
        for isa in Isa::available() {
            assert_eq!(Isa::parse(isa.short_name()), Ok(isa));
        }
        let err = Isa::parse("sse9").unwrap_err();
        assert!(err.fix().contains("avx512, avx2, portable"), "{err}");
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("avx512f") {
            assert!(
                Isa::parse("avx512")
                    .unwrap_err()
                    .problem()
                    .contains("cannot run")
            );
        }
    }
}
