import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { every } from './schedule.js';

describe('every (the schedulers’ timer)', () => {
  it('refuses a period below 1s instead of running at another one', () => {
    assert.throws(() => every(999, () => {}), RangeError);
    assert.throws(() => every(0, () => {}), RangeError);
  });

  it('runs at exactly the period, also above setInterval’s 24.8-day limit, until stopped', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const day = 86_400_000;
      let ticks = 0;
      const stop = every(30 * day, () => ticks++);
      // Ticks end on each timer's due time: the mock schedules a timer set inside a callback from the tick's end.
      const step = 2 ** 31 - 1;
      mock.timers.tick(1000);
      assert.equal(ticks, 0, 'a long period does not overflow into a 1 ms timer');
      mock.timers.tick(step - 1000);
      assert.equal(ticks, 0, 'the first step is waited out without a tick');
      mock.timers.tick(30 * day - step - 1);
      assert.equal(ticks, 0);
      mock.timers.tick(1);
      assert.equal(ticks, 1, 'ticks at exactly 30 days');
      mock.timers.tick(step);
      mock.timers.tick(30 * day - step);
      assert.equal(ticks, 2);
      stop();
      mock.timers.tick(60 * day);
      assert.equal(ticks, 2);

      let short = 0;
      const stopShort = every(1000, () => short++);
      for (let i = 0; i < 3; i++) mock.timers.tick(1000);
      mock.timers.tick(999);
      assert.equal(short, 3);
      stopShort();
    } finally {
      mock.timers.reset();
    }
  });
});
