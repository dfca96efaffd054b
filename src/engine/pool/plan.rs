//! What the pool makes next, decided from a picture of its lanes and of the scenarios to come.
//!
//! A lane serves one scenario at a time. So a warm container serves the next scenario at once
//! only in a *free* lane, and a lane serves only one of the next scenarios: three warm containers
//! of an image in one lane serve three scenarios one after another, not side by side (measured on
//! the examples: warm containers piled up in the one free lane while the others were leased, and
//! the next scenarios missed once those came free empty). Hence two kinds of scenario to come:
//!
//! - **the next ones**, as many as there are free lanes and lanes still to be made, are matched
//!   to distinct free lanes: one holding a container of their image if there is one; else a free
//!   lane nothing of these takes gets one made; else a new lane is made with one;
//! - **the ones after**, served by whichever lane comes free first: a container anywhere counts
//!   for them, and a new one goes to the lane holding the fewest.

use std::collections::HashMap;

/// A lane as planning sees it.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Not leased: it can serve the next scenario.
    pub free: bool,
    /// Still being made: it will serve, but cannot be given containers yet.
    pub coming: bool,
    /// Images of the containers it holds for scenarios to come: warm, being made, and (with
    /// reuse, where they come back) lent.
    pub supply: Vec<String>,
}

/// The scenarios to come and the limits on serving them.
pub struct Demand<'a> {
    /// The step image of each scenario to come, in order, waiting ones first.
    pub upcoming: &'a [String],
    /// How many of them may have containers made ahead (waiting ones plus `[pool] size`).
    pub warm: usize,
    /// How many lanes may still be made.
    pub lanes: usize,
    /// With reuse, containers come back to their lane after each scenario: more of one image
    /// than this (the lanes) would never all be used.
    pub cap: Option<usize>,
}

/// What to make.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// New lanes, by the image of the first step container each brings.
    pub lanes: Vec<String>,
    /// New warm containers: the index of a slot (never a coming one) and an image.
    pub warm: Vec<(usize, String)>,
}

pub fn plan(mut slots: Vec<Slot>, demand: &Demand<'_>) -> Plan {
    let mut plan = Plan::default();
    let mut taken = vec![false; slots.len()];
    // Containers each lane holds or will hold, claimed or not: new ones go where there are fewest.
    let mut load: Vec<usize> = slots.iter().map(|s| s.supply.len()).collect();
    // Containers of each image that exist or will, for the cap.
    let mut made: HashMap<String, usize> = HashMap::new();
    for image in slots.iter().flat_map(|s| &s.supply) {
        *made.entry(image.clone()).or_default() += 1;
    }
    let mut may_make = |image: &str| {
        let n = made.entry(image.to_string()).or_default();
        let allowed = demand.cap.is_none_or(|cap| *n < cap);
        *n += usize::from(allowed);
        allowed
    };
    let upcoming: Vec<(usize, &String)> = demand.upcoming.iter().enumerate().collect();
    let now = slots.iter().filter(|s| s.free).count() + demand.lanes;
    let (next, after) = upcoming.split_at(upcoming.len().min(now));

    let mut unmatched = Vec::new();
    for &(index, image) in next {
        match (0..slots.len()).find(|&s| slots[s].free && !taken[s] && slots[s].supply.contains(image)) {
            Some(s) => {
                taken[s] = true;
                claim(&mut slots[s].supply, image);
            }
            None => unmatched.push((index, image)),
        }
    }
    let mut later = Vec::new();
    for (index, image) in unmatched {
        let open = (0..slots.len()).filter(|&s| slots[s].free && !slots[s].coming && !taken[s]);
        match open.min_by_key(|&s| load[s]) {
            Some(s) => {
                if index < demand.warm && may_make(image) {
                    taken[s] = true;
                    load[s] += 1;
                    plan.warm.push((s, image.clone()));
                }
            }
            None if plan.lanes.len() < demand.lanes => {
                if may_make(image) {
                    plan.lanes.push(image.clone());
                }
            }
            None => later.push((index, image)),
        }
    }
    later.extend_from_slice(after);
    later.sort_by_key(|&(index, _)| index);
    for (index, image) in later {
        if let Some(s) = (0..slots.len()).find(|&s| slots[s].supply.contains(image)) {
            claim(&mut slots[s].supply, image);
            continue;
        }
        let open = (0..slots.len()).filter(|&s| !slots[s].coming);
        let Some(s) = open.min_by_key(|&s| (load[s], !slots[s].free)) else { break };
        if index < demand.warm && may_make(image) {
            load[s] += 1;
            plan.warm.push((s, image.clone()));
        }
    }
    plan
}

/// Takes one container of `image` out of `supply`, if it holds one.
pub fn claim(supply: &mut Vec<String>, image: &str) {
    if let Some(at) = supply.iter().position(|i| i == image) {
        supply.remove(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(free: bool, supply: &[&str]) -> Slot {
        Slot { free, coming: false, supply: supply.iter().map(|s| s.to_string()).collect() }
    }

    fn images(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn planned(slots: Vec<Slot>, upcoming: &[&str], lanes: usize) -> Plan {
        let upcoming = images(upcoming);
        plan(slots, &Demand { upcoming: &upcoming, warm: 10, lanes, cap: None })
    }

    fn warm(pairs: &[(usize, &str)]) -> Vec<(usize, String)> {
        pairs.iter().map(|(s, i)| (*s, i.to_string())).collect()
    }

    #[test]
    fn containers_piled_in_one_free_lane_serve_one_of_the_next_scenarios() {
        let slots = vec![lane(true, &["app", "app", "app"]), lane(true, &[]), lane(true, &[])];
        let plan = planned(slots, &["app", "app", "app"], 0);
        assert_eq!(plan.warm, warm(&[(1, "app"), (2, "app")]));
        assert!(plan.lanes.is_empty());
    }

    #[test]
    fn a_lane_holding_the_image_is_matched_before_an_empty_one_is_given_one() {
        let slots = vec![lane(true, &["bb"]), lane(true, &[])];
        assert_eq!(planned(slots, &["demo", "bb"], 0).warm, warm(&[(1, "demo")]));
    }

    #[test]
    fn with_every_lane_leased_a_lane_is_made_for_the_next_and_later_containers_spread() {
        let slots = vec![lane(false, &[]), lane(false, &[])];
        let plan = planned(slots, &["demo", "bb", "bb"], 1);
        assert_eq!(plan.lanes, images(&["demo"]));
        assert_eq!(plan.warm, warm(&[(0, "bb"), (1, "bb")]));
    }

    #[test]
    fn a_leased_lanes_containers_count_for_the_scenarios_after_the_next() {
        let slots = vec![lane(false, &["bb"]), lane(true, &["app"])];
        assert_eq!(planned(slots, &["app", "bb"], 0), Plan::default());
    }

    #[test]
    fn a_lane_being_made_serves_one_scenario_and_is_given_nothing() {
        let coming = Slot { free: true, coming: true, supply: images(&["demo"]) };
        let plan = planned(vec![lane(false, &[]), coming], &["demo", "demo"], 0);
        assert_eq!(plan.warm, warm(&[(0, "demo")]));
    }

    #[test]
    fn nothing_is_made_ahead_past_the_warm_limit() {
        let upcoming = images(&["bb", "bb", "bb", "bb"]);
        let slots = vec![lane(true, &[]), lane(true, &[])];
        let plan = plan(slots, &Demand { upcoming: &upcoming, warm: 1, lanes: 0, cap: None });
        assert_eq!(plan.warm, warm(&[(0, "bb")]));
    }

    #[test]
    fn with_reuse_no_image_is_made_past_the_cap() {
        let upcoming = images(&["bb", "bb", "bb"]);
        let slots = vec![lane(false, &["bb"]), lane(true, &["bb"]), lane(true, &[])];
        let plan = plan(slots, &Demand { upcoming: &upcoming, warm: 10, lanes: 0, cap: Some(2) });
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn an_empty_demand_makes_nothing() {
        assert_eq!(planned(vec![lane(true, &[])], &[], 2), Plan::default());
    }
}
