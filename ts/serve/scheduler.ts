// Admission control in front of the engine: at most `maxActive` generations run, at most
// `maxQueue` wait (FIFO); one more is refused at once with 503 + Retry-After rather than piling
// up latency. A waiter whose signal aborts leaves the queue without ever reaching the engine.
// A running job keeps its slot until the engine's work really ends, even after its caller gave
// up: the caller is released at once, the slot only when the compute is over, so the
// active-batch gauge never claims capacity the CPU does not have.
import { ApiError } from './api-error.js';
import type { ServerMetrics } from './metrics.js';

interface Waiter {
  start: () => void;
  cancel: () => void;
}

export class Scheduler {
  private active = 0;
  private readonly queue: Waiter[] = [];
  private readonly idleWaiters: Array<() => void> = [];
  // Moving average of job seconds, for Retry-After; starts at 1 s before anything ran.
  private averageJobSeconds = 1;

  constructor(
    private readonly maxActive: number,
    private readonly maxQueue: number,
    private readonly metrics: ServerMetrics
  ) {}

  get activeCount(): number {
    return this.active;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /** Resolves when nothing runs and nothing waits. */
  whenIdle(): Promise<void> {
    if (this.active === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Seconds a refused client should wait: the queue ahead of it drained at the observed pace. */
  retryAfterSeconds(): number {
    const seconds = (this.averageJobSeconds * (this.queue.length + 1)) / this.maxActive;
    return Math.min(60, Math.max(1, Math.ceil(seconds)));
  }

  /**
   * Runs `job` when a slot is free. Rejects with 503 when the queue is full, and with
   * `signal.reason` as soon as `signal` aborts (the job, if started, finishes in the background).
   */
  run<T>(job: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.active >= this.maxActive && this.queue.length >= this.maxQueue) {
      this.metrics.rejected.inc({ reason: 'queue_full' });
      const retry = this.retryAfterSeconds();
      return Promise.reject(
        new ApiError(503, `the server is busy (${this.active} running, ${this.queue.length} queued); retry in ${retry} s`, {
          type: 'unavailable_error',
          code: 'queue_full',
          headers: { 'Retry-After': String(retry) },
        })
      );
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const start = (): void => {
        this.active += 1;
        this.updateGauges();
        const started = performance.now();
        job()
          .then(resolve, reject)
          .finally(() => {
            signal.removeEventListener('abort', onAbort);
            this.averageJobSeconds = 0.8 * this.averageJobSeconds + 0.2 * ((performance.now() - started) / 1000);
            this.active -= 1;
            this.pump();
          });
      };
      if (this.active < this.maxActive) {
        start();
        return;
      }
      const waiter: Waiter = {
        start,
        cancel: () => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          this.pump();
        },
      };
      signal.addEventListener('abort', waiter.cancel, { once: true });
      this.queue.push(waiter);
      this.updateGauges();
    });
  }

  private pump(): void {
    while (this.active < this.maxActive && this.queue.length > 0) this.queue.shift()?.start();
    this.updateGauges();
    if (this.active === 0 && this.queue.length === 0) for (const fn of this.idleWaiters.splice(0)) fn();
  }

  private updateGauges(): void {
    this.metrics.queueDepth.set(this.queue.length);
    this.metrics.activeBatch.set(this.active);
  }
}
