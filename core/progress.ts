/**
 * Progress of an operation made of named stages and one counted step kind (tiles, faces): what the
 * upscale and face pipelines both report. It keeps the counts and timing, builds each event with
 * the operation's own `build` (its field names and progress formula) and never lets a failing
 * listener break the operation.
 */
export interface StepState<Stage extends string> {
  stage: Stage;
  done: number;
  total: number;
  elapsed_ms: number;
  /** Time left at the pace of the steps so far (from the first step's start), or null before one is done. */
  eta_ms: number | null;
}

export class StepProgress<Stage extends string, Event> {
  done = 0;
  private total = 0;
  private current: Stage;
  private stepsStartedAt = 0;

  constructor(
    private readonly t0: number,
    initial: Stage,
    /** The stage during which steps run: its first report starts the pace clock. */
    private readonly stepStage: Stage,
    private readonly build: (state: StepState<Stage>, message: string) => Event,
    private readonly listener?: (event: Event) => void,
  ) {
    this.current = initial;
  }

  setTotal(total: number): void {
    this.total = total;
  }

  stage(stage: Stage, message: string): void {
    this.current = stage;
    this.emit(message);
  }

  stepDone(message: string): void {
    this.done++;
    this.emit(message);
  }

  private emit(message: string): void {
    if (!this.listener) return;
    const now = performance.now();
    if (this.current === this.stepStage && this.done === 0) this.stepsStartedAt = now;
    const perStep = this.done > 0 ? (now - (this.stepsStartedAt || this.t0)) / this.done : 0;
    const state: StepState<Stage> = {
      stage: this.current,
      done: this.done,
      total: this.total,
      elapsed_ms: now - this.t0,
      eta_ms: this.done > 0 ? perStep * (this.total - this.done) : null,
    };
    try {
      this.listener(this.build(state, message));
    } catch {
      // A faulty progress listener must not break the operation.
    }
  }
}
