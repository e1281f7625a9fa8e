/** A one-line progress bar on a terminal; silent when the stream is a pipe or a file. */
export class ProgressBar {
  private label = '';
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  start(label: string): void {
    this.label = label;
  }

  /** `fraction` null draws an indeterminate bar with only the text. */
  update(fraction: number | null, text: string): void {
    if (!this.stream.isTTY) return;
    const width = 24;
    const bar = fraction === null
      ? ' '.repeat(width)
      : '#'.repeat(Math.round(fraction * width)).padEnd(width, '-');
    const pct = fraction === null ? '' : ` ${Math.round(fraction * 100)}%`;
    this.stream.write(`\r\x1b[2K${this.label} [${bar}]${pct} ${text}`);
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
