//! Migratetypes: what kind of mobility a request declares and a pageblock is labelled with.

/// The kernel's migratetypes, with the kernel's numeric values (CONFIG_CMA and
/// CONFIG_MEMORY_ISOLATION both on, as on distro kernels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MigrateType {
    Unmovable = 0,
    Movable = 1,
    Reclaimable = 2,
    HighAtomic = 3,
    Cma = 4,
    Isolate = 5,
}

/// Number of migratetypes (MIGRATE_TYPES).
pub const MIGRATE_TYPES: usize = 6;
/// Number of types a caller can request and that fall back to each other (MIGRATE_PCPTYPES).
pub const MIGRATE_PCPTYPES: usize = 3;

impl MigrateType {
    /// All types in enum order.
    pub const ALL: [MigrateType; MIGRATE_TYPES] = [
        MigrateType::Unmovable,
        MigrateType::Movable,
        MigrateType::Reclaimable,
        MigrateType::HighAtomic,
        MigrateType::Cma,
        MigrateType::Isolate,
    ];

    /// From the kernel's number.
    pub fn from_u8(v: u8) -> Option<MigrateType> {
        MigrateType::ALL.get(v as usize).copied()
    }
    /// Index into per-type arrays.
    #[inline]
    pub const fn idx(self) -> usize {
        self as usize
    }
    /// The name the kernel prints (migratetype_names).
    pub const fn name(self) -> &'static str {
        match self {
            MigrateType::Unmovable => "Unmovable",
            MigrateType::Movable => "Movable",
            MigrateType::Reclaimable => "Reclaimable",
            MigrateType::HighAtomic => "HighAtomic",
            MigrateType::Cma => "CMA",
            MigrateType::Isolate => "Isolate",
        }
    }
    /// The show_mem letter (U, M, E, H, C, I).
    pub const fn letter(self) -> char {
        match self {
            MigrateType::Unmovable => 'U',
            MigrateType::Movable => 'M',
            MigrateType::Reclaimable => 'E',
            MigrateType::HighAtomic => 'H',
            MigrateType::Cma => 'C',
            MigrateType::Isolate => 'I',
        }
    }
    /// UNMOVABLE, MOVABLE and RECLAIMABLE merge with each other and fall back to each other.
    #[inline]
    pub const fn is_mergeable(self) -> bool {
        (self as usize) < MIGRATE_PCPTYPES
    }
    /// Non-movable in the sense of the spb measures: UNMOVABLE, RECLAIMABLE or HIGHATOMIC.
    #[inline]
    pub const fn is_non_movable(self) -> bool {
        matches!(
            self,
            MigrateType::Unmovable | MigrateType::Reclaimable | MigrateType::HighAtomic
        )
    }
    /// The mainline fallback table (fallbacks[]): preference order when the type's lists are empty.
    pub const fn fallbacks(self) -> &'static [MigrateType] {
        match self {
            MigrateType::Unmovable => &[MigrateType::Reclaimable, MigrateType::Movable],
            MigrateType::Movable => &[MigrateType::Reclaimable, MigrateType::Unmovable],
            MigrateType::Reclaimable => &[MigrateType::Unmovable, MigrateType::Movable],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn fallback_table_matches_mainline() {
        assert_eq!(
            MigrateType::Unmovable.fallbacks(),
            &[MigrateType::Reclaimable, MigrateType::Movable]
        );
        assert_eq!(
            MigrateType::Movable.fallbacks(),
            &[MigrateType::Reclaimable, MigrateType::Unmovable]
        );
        assert_eq!(
            MigrateType::Reclaimable.fallbacks(),
            &[MigrateType::Unmovable, MigrateType::Movable]
        );
        assert!(MigrateType::HighAtomic.fallbacks().is_empty());
    }
    #[test]
    fn numbering() {
        for (i, t) in MigrateType::ALL.iter().enumerate() {
            assert_eq!(MigrateType::from_u8(i as u8), Some(*t));
        }
        assert_eq!(MigrateType::from_u8(6), None);
    }
}
