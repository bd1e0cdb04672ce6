//! Memory geometry as data: page size and the three orders that shape the allocator.
//!
//! The kernel hard-codes these per architecture; spb keeps them in a value so that unit tests can
//! run on a tiny geometry where every edge case (a full superpageblock, a merge across
//! pageblocks, a zone boundary inside an SPB) is a few dozen pages away.

/// Page frame number.
pub type Pfn = u64;

/// Orders and sizes of one simulated machine.
///
/// # Invariants
/// `pageblock_order <= max_order <= spb_order` and `spb_order < 32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// log2 of the page size in bytes (12 = 4 KiB).
    pub page_shift: u8,
    /// Pageblock order: the unit of migratetype labelling (9 = 2 MiB on x86_64).
    pub pageblock_order: u8,
    /// Largest buddy order (MAX_PAGE_ORDER, 10 on x86_64).
    pub max_order: u8,
    /// Superpageblock order (18 = 1 GiB on x86_64 with 4 KiB pages).
    pub spb_order: u8,
}

/// Why a geometry was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeometryError(pub &'static str);

impl core::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

impl Geometry {
    /// x86_64 with 4 KiB pages: 2 MiB pageblocks, order-10 buddies, 1 GiB superpageblocks.
    pub const X86_64: Geometry = Geometry {
        page_shift: 12,
        pageblock_order: 9,
        max_order: 10,
        spb_order: 18,
    };

    /// A tiny geometry for tests: 8-page pageblocks, order-4 buddies, 16-pageblock SPBs.
    pub const TINY: Geometry = Geometry {
        page_shift: 12,
        pageblock_order: 3,
        max_order: 4,
        spb_order: 7,
    };

    /// Check the invariants.
    pub fn validate(&self) -> Result<(), GeometryError> {
        if self.pageblock_order > self.max_order {
            return Err(GeometryError(
                "pageblock order must not exceed the max buddy order",
            ));
        }
        if self.max_order > self.spb_order {
            return Err(GeometryError(
                "max buddy order must not exceed the superpageblock order",
            ));
        }
        if self.spb_order >= 32 || self.max_order >= 31 {
            return Err(GeometryError("superpageblock order must be below 32"));
        }
        if self.page_shift < 9 || self.page_shift > 20 {
            return Err(GeometryError("page shift must be between 9 and 20"));
        }
        Ok(())
    }
    /// Bytes per page.
    #[inline]
    pub const fn page_size(&self) -> u64 {
        1 << self.page_shift
    }
    /// Pages per pageblock.
    #[inline]
    pub const fn pageblock_pages(&self) -> u64 {
        1 << self.pageblock_order
    }
    /// Pages per superpageblock.
    #[inline]
    pub const fn spb_pages(&self) -> u64 {
        1 << self.spb_order
    }
    /// Pageblocks per superpageblock.
    #[inline]
    pub const fn pageblocks_per_spb(&self) -> u64 {
        1 << (self.spb_order - self.pageblock_order)
    }
    /// Number of buddy orders (NR_PAGE_ORDERS).
    #[inline]
    pub const fn nr_orders(&self) -> usize {
        self.max_order as usize + 1
    }
    /// The costly-order threshold (PAGE_ALLOC_COSTLY_ORDER): orders above it are "costly".
    #[inline]
    pub const fn costly_order(&self) -> u8 {
        3
    }
    /// Pages to bytes.
    #[inline]
    pub const fn pages_to_bytes(&self, pages: u64) -> u64 {
        pages << self.page_shift
    }
    /// Bytes to pages (rounded down).
    #[inline]
    pub const fn bytes_to_pages(&self, bytes: u64) -> u64 {
        bytes >> self.page_shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn presets_are_valid() {
        Geometry::X86_64.validate().unwrap();
        Geometry::TINY.validate().unwrap();
        assert_eq!(Geometry::X86_64.spb_pages(), 262144);
        assert_eq!(Geometry::X86_64.pageblocks_per_spb(), 512);
        assert_eq!(Geometry::TINY.pageblocks_per_spb(), 16);
    }
    #[test]
    fn rejects_bad_orders() {
        let g = Geometry {
            page_shift: 12,
            pageblock_order: 5,
            max_order: 4,
            spb_order: 7,
        };
        assert!(g.validate().is_err());
        let g = Geometry {
            page_shift: 12,
            pageblock_order: 3,
            max_order: 8,
            spb_order: 7,
        };
        assert!(g.validate().is_err());
    }
}
