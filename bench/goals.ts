/**
 * The Node 24 performance goals (issue "Performance on Node 24"), each checked against the baseline measured in the
 * same run: throughput as the median round ratio, pooled p99.9 at the fixed load, the slowest Check of any
 * fixed-load run, and RSS after the memory phase.
 */
import type { ScenarioResult } from "./report.js";

/** Least round ×baseline per keymesh scenario. */
export const THROUGHPUT_GOALS: Readonly<Record<string, number>> = {
  "km-limited": 1.5,
  "km-unlimited": 1.7,
  "km-malformed": 1.7,
  "km-unknown": 1.7,
  "km-revoked": 1.7,
};
/** Most pooled p99.9 ×baseline at the fixed load. */
export const P999_GOAL = 1.0;
/** Slowest Check allowed in any fixed-load run, ms. */
export const MAX_CHECK_MS = 100;
/** Most RSS after load ×baseline. */
export const RSS_GOAL = 1.2;

/** One figure against its goal. */
export interface GoalFigure {
  value: number;
  goal: number;
  met: boolean;
}

/** A keymesh scenario's figures against every goal. */
export interface ScenarioGoals {
  scenario: string;
  throughputXBaseline: GoalFigure;
  p999XBaseline: GoalFigure;
  maxCheckMs: GoalFigure;
  rssXBaseline?: GoalFigure;
}

const atLeast = (value: number, goal: number): GoalFigure => ({ value, goal, met: value >= goal });
const atMost = (value: number, goal: number): GoalFigure => ({ value, goal, met: value <= goal });

/** The goals of each scenario that has a throughput goal; empty when the run has no baseline. */
export function checkGoals(scenarios: readonly ScenarioResult[]): ScenarioGoals[] {
  const baseline = scenarios.find((s) => s.name === "baseline");
  if (!baseline) return [];
  const baselineRss = baseline.rss?.after.rssMiB;
  return scenarios.flatMap((s) => {
    const goal = THROUGHPUT_GOALS[s.name];
    if (goal === undefined) return [];
    const rss = s.rss && baselineRss ? atMost(s.rss.after.rssMiB / baselineRss, RSS_GOAL) : undefined;
    return [
      {
        scenario: s.name,
        throughputXBaseline: atLeast(s.throughput.medianRoundXBaseline, goal),
        p999XBaseline: atMost(s.fixedLoad.pooled.p999XBaseline, P999_GOAL),
        maxCheckMs: atMost(s.fixedLoad.pooled.maxMs, MAX_CHECK_MS),
        ...(rss ? { rssXBaseline: rss } : {}),
      },
    ];
  });
}

const cell = (f: GoalFigure | undefined, digits = 2): string =>
  f === undefined ? "n/a" : `${f.value.toFixed(digits)} ${f.met ? "met" : "**not met**"}`;

/** The goals as a markdown table. */
export function goalsTable(goals: readonly ScenarioGoals[]): string[] {
  if (goals.length === 0) return [];
  return [
    "## Goals",
    "",
    `Throughput: round ×baseline (median), at least ${THROUGHPUT_GOALS["km-limited"]} with a Redis limit and ` +
      `${THROUGHPUT_GOALS["km-unlimited"]} otherwise. Tail: pooled p99.9 at the fixed load ×baseline, at most ` +
      `${P999_GOAL}; the slowest Check of any fixed-load run, at most ${MAX_CHECK_MS} ms. Memory: RSS after the ` +
      `memory phase ×baseline, at most ${RSS_GOAL}.`,
    "",
    "| scenario | throughput ×baseline | p99.9 ×baseline | slowest Check ms | RSS ×baseline |",
    "|---|---|---|---|---|",
    ...goals.map(
      (g) =>
        `| ${g.scenario} | ${cell(g.throughputXBaseline)} (≥ ${g.throughputXBaseline.goal}) | ` +
        `${cell(g.p999XBaseline)} | ${cell(g.maxCheckMs, 1)} | ${cell(g.rssXBaseline)} |`,
    ),
    "",
  ];
}
