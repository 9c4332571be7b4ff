import { HistogramCell } from "./cells.js";
import { OUTCOMES } from "./outcomes.js";

/**
 * One transport's decisions by key-space label and outcome, each a histogram cell whose count is also the
 * decision counter. Cells are made on first use, so only combinations that happened become series.
 */
export class DecisionTable {
  private readonly rows: (HistogramCell | undefined)[][] = [];

  constructor(readonly bounds: Float64Array) {}

  /** The cell of a key-space label index and an outcome index (see outcomes.ts). */
  cell(label: number, outcome: number): HistogramCell {
    let row = this.rows[label];
    if (row === undefined) {
      row = new Array<HistogramCell | undefined>(OUTCOMES.length).fill(undefined);
      this.rows[label] = row;
    }
    let cell = row[outcome];
    if (cell === undefined) {
      cell = new HistogramCell(this.bounds);
      row[outcome] = cell;
    }
    return cell;
  }

  /** Every cell in use with its label index and outcome index. */
  *cells(): Iterable<readonly [label: number, outcome: number, cell: HistogramCell]> {
    for (let label = 0; label < this.rows.length; label++) {
      const row = this.rows[label];
      if (!row) continue;
      for (let outcome = 0; outcome < row.length; outcome++) {
        const cell = row[outcome];
        if (cell) yield [label, outcome, cell];
      }
    }
  }
}
