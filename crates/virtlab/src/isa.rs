//! Which SIMD instruction sets this CPU has, found in one place: chapter 0's inventory lists
//! them, the FMA peak loop and the matmul kernels pick the widest (and their tests run every one
//! the CPU has).

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
}
