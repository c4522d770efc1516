// A progress bar on stderr: redrawn in place on a terminal, a line per
// phase otherwise (CI logs, pipes).

export class Progress {
  private done = 0;
  private phase = '';
  private lastDraw = 0;
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly total: number) {}

  startPhase(name: string): void {
    this.phase = name;
    if (!this.tty) process.stderr.write(`[${this.percent()}%] ${name}\n`);
    this.draw(true);
  }

  /** One unit of work finished. */
  step(units = 1): void {
    this.done = Math.min(this.total, this.done + units);
    this.draw(false);
  }

  finish(): void {
    this.done = this.total;
    this.draw(true);
    if (this.tty) process.stderr.write('\n');
  }

  private percent(): number {
    return Math.floor((100 * this.done) / Math.max(1, this.total));
  }

  private draw(force: boolean): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const width = 30;
    const filled = Math.round((width * this.done) / Math.max(1, this.total));
    const elapsed = (now - this.started) / 1000;
    const eta = this.done > 0 ? (elapsed * (this.total - this.done)) / this.done : 0;
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.percent()}% ${elapsed.toFixed(0)}s elapsed, ~${eta.toFixed(0)}s left  ${this.phase}`;
    process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1).padEnd(Math.min(119, (process.stderr.columns ?? 120) - 1))}`);
  }
}
