//! The generated shop: a category tree of departments, subcategories and groups, and the items in its
//! leaves with names and fixed prices.

use crate::words::{
    DepartmentWords, ADJECTIVES, DEPARTMENTS, GENERIC_NOUNS, GROUPS, MODEL_LETTERS,
};
use crate::GenConfig;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use topsellers_model::CategoryPath;

/// Price range of items in minor units (1.99 to 999.00), drawn log-uniformly so cheap items are as
/// common per decade of price as expensive ones, as in real catalogs.
const MIN_PRICE_MINOR: i64 = 199;
const MAX_PRICE_MINOR: i64 = 99_900;

/// Chance that a subcategory is split into groups (a third level) rather than being a leaf itself.
const SPLIT_PROBABILITY: f64 = 0.5;

/// One item for sale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// `SKU-000123`; the number is the item's index in [`Catalog::items`] plus one.
    pub id: String,
    /// Adjective + noun + model: `Compact Kettle K-42`.
    pub name: String,
    /// The leaf category it is sold in.
    pub category: CategoryPath,
    /// Fixed price of one unit, in minor units.
    pub unit_price_minor: i64,
}

/// A leaf category and its items, most popular first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub path: CategoryPath,
    /// Indices into [`Catalog::items`], by popularity rank: element 0 sells most.
    pub items_by_popularity: Vec<usize>,
}

/// The generated category tree and items. Built from the seed alone, so two generators with one seed
/// sell the same things.
#[derive(Clone, Debug)]
pub struct Catalog {
    departments: Vec<CategoryPath>,
    leaves: Vec<Leaf>,
    /// Indices into `leaves`, most popular leaf first.
    leaves_by_popularity: Vec<usize>,
    items: Vec<Item>,
}

impl Catalog {
    /// Builds the catalog. Expects a config that passed [`GenConfig::validate`]; out-of-range sizes
    /// are clamped to the smallest usable value rather than panicking.
    pub fn build(config: &GenConfig) -> Catalog {
        // A stream of its own, so the catalog does not depend on how many events were generated.
        let mut rng = StdRng::seed_from_u64(config.seed ^ 0x5ca7_a109_0000_0001);
        let department_count = config.departments.max(1);
        let leaf_count = config.leaves.max(department_count);
        let items_per_leaf = config.items_per_leaf.max(1);

        let mut departments = Vec::with_capacity(department_count);
        let mut leaves = Vec::with_capacity(leaf_count);
        let mut items = Vec::with_capacity(leaf_count * items_per_leaf);
        for d in 0..department_count {
            let words = DEPARTMENTS.get(d);
            let name =
                words.map_or_else(|| format!("department {}", d + 1), |w| w.name.to_string());
            let department = path(&[&name]);
            // Spread leaves as evenly as possible; the first departments take the remainder.
            let share =
                leaf_count / department_count + usize::from(d < leaf_count % department_count);
            for leaf_path in leaf_paths(&name, words, share, &mut rng) {
                let first = items.len();
                for _ in 0..items_per_leaf {
                    let index = items.len();
                    items.push(Item {
                        id: sku(index),
                        name: item_name(words, &mut rng),
                        category: leaf_path.clone(),
                        unit_price_minor: price(&mut rng),
                    });
                }
                let mut ranked: Vec<usize> = (first..items.len()).collect();
                // Popularity must not follow SKU order, or the top sellers would always be the lowest ids.
                ranked.shuffle(&mut rng);
                leaves.push(Leaf {
                    path: leaf_path,
                    items_by_popularity: ranked,
                });
            }
            departments.push(department);
        }
        let mut leaves_by_popularity: Vec<usize> = (0..leaves.len()).collect();
        leaves_by_popularity.shuffle(&mut rng);
        Catalog {
            departments,
            leaves,
            leaves_by_popularity,
            items,
        }
    }

    /// The top-level categories.
    pub fn departments(&self) -> &[CategoryPath] {
        &self.departments
    }

    /// The leaf categories, grouped by department.
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// The leaf at a popularity rank (0 = busiest).
    pub fn leaf_by_popularity(&self, rank: usize) -> &Leaf {
        &self.leaves[self.leaves_by_popularity[rank]]
    }

    /// Every item, in SKU order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The item with this id, if it is in the catalog.
    pub fn item(&self, id: &str) -> Option<&Item> {
        let number: usize = id.strip_prefix("SKU-")?.parse().ok()?;
        self.items
            .get(number.checked_sub(1)?)
            .filter(|i| i.id == id)
    }
}

fn sku(index: usize) -> String {
    format!("SKU-{:06}", index + 1)
}

fn path(segments: &[&str]) -> CategoryPath {
    CategoryPath::parse(&segments.join("/"))
        .expect("generated category names are short and printable")
}

/// `count` leaf paths under one department: subcategories that are leaves (depth 2) and subcategories
/// split into 2-4 groups (depth 3). A leaf is never also a parent.
fn leaf_paths(
    department: &str,
    words: Option<&DepartmentWords>,
    count: usize,
    rng: &mut StdRng,
) -> Vec<CategoryPath> {
    let subcategory_words: &[&str] = words.map_or(GROUPS, |w| w.subcategories);
    let mut out = Vec::with_capacity(count);
    let mut sub_index = 0;
    while out.len() < count {
        let remaining = count - out.len();
        let sub = numbered(subcategory_words, sub_index);
        sub_index += 1;
        if remaining >= 2 && rng.gen_bool(SPLIT_PROBABILITY) {
            let groups = rng.gen_range(2..=4).min(remaining);
            let first_group = rng.gen_range(0..GROUPS.len());
            for g in 0..groups {
                let group = numbered(GROUPS, first_group + g);
                out.push(path(&[department, &sub, &group]));
            }
        } else {
            out.push(path(&[department, &sub]));
        }
    }
    out
}

/// The `i`-th name of a list, with a number once the list runs out: `audio`, ..., `audio 2`.
fn numbered(words: &[&str], i: usize) -> String {
    let word = words[i % words.len()];
    match i / words.len() {
        0 => word.to_string(),
        round => format!("{word} {}", round + 1),
    }
}

fn item_name(words: Option<&DepartmentWords>, rng: &mut StdRng) -> String {
    let nouns: &[&str] = words.map_or(GENERIC_NOUNS, |w| w.nouns);
    let adjective = ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())];
    let noun = nouns[rng.gen_range(0..nouns.len())];
    let letter = char::from(MODEL_LETTERS[rng.gen_range(0..MODEL_LETTERS.len())]);
    let model = rng.gen_range(1..100) * 10;
    format!("{adjective} {noun} {letter}-{model}")
}

fn price(rng: &mut StdRng) -> i64 {
    let (lo, hi) = ((MIN_PRICE_MINOR as f64).ln(), (MAX_PRICE_MINOR as f64).ln());
    let raw = rng.gen_range(lo..=hi).exp().round() as i64;
    // Shops price at .99 above ten units of currency; below, any cent is plausible.
    let shaped = if raw >= 1_000 {
        raw / 100 * 100 - 1
    } else {
        raw
    };
    shaped.clamp(MIN_PRICE_MINOR, MAX_PRICE_MINOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn numbered_names_stay_unique_past_the_list() {
        let names: HashSet<String> = (0..30).map(|i| numbered(&["a", "b", "c"], i)).collect();
        assert_eq!(names.len(), 30);
        assert_eq!(numbered(&["a", "b"], 3), "b 2");
    }

    #[test]
    fn items_are_found_by_id_and_prices_are_in_range() {
        let catalog = Catalog::build(&GenConfig::default());
        assert_eq!(catalog.items().len(), 48 * 500);
        let item = &catalog.items()[122];
        assert_eq!(item.id, "SKU-000123");
        assert_eq!(catalog.item("SKU-000123"), Some(item));
        assert_eq!(catalog.item("SKU-999999"), None);
        assert_eq!(catalog.item("SKU-000000"), None);
        assert!(catalog
            .items()
            .iter()
            .all(|i| (MIN_PRICE_MINOR..=MAX_PRICE_MINOR).contains(&i.unit_price_minor)));
        // Log-uniform: about as many items under 10.00 (1.99-10) as over 100.00 (100-999), both plenty.
        let cheap = catalog
            .items()
            .iter()
            .filter(|i| i.unit_price_minor < 1_000)
            .count();
        let dear = catalog
            .items()
            .iter()
            .filter(|i| i.unit_price_minor > 10_000)
            .count();
        assert!(cheap > 4_000 && dear > 4_000, "{cheap} {dear}");
        let name = &item.name;
        assert!(name.split(' ').count() >= 3 && name.contains('-'), "{name}");
    }

    #[test]
    fn more_departments_than_named_ones_get_numbered_names() {
        let config = GenConfig {
            departments: 14,
            leaves: 14,
            items_per_leaf: 2,
            ..GenConfig::default()
        };
        let catalog = Catalog::build(&config);
        assert_eq!(catalog.departments().len(), 14);
        assert_eq!(catalog.departments()[13].as_str(), "department 14");
        assert_eq!(catalog.leaves().len(), 14);
    }
}
