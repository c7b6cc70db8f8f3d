// The config rules of stream stages (StageOptions.stream): each misuse is refused when the
// method is declared, with E_CONFIG_INVALID and a message that says what to change. The
// register API runs here as a config's import would run it outside a server load.
import t from 'tap';
import * as register from '../../dist/engine/register.js';
import type { Placeholder } from '../../dist/engine/register.js';
import { ServingError } from '../../dist/engine/errors.js';
import type { Tensor } from '../../dist/engine/tensor.js';

async function* gen(x: Tensor) {
  yield x;
}
async function* gen2(x: Tensor) {
  yield [x, x];
}
function plain(x: Tensor): Tensor {
  return x;
}
async function* wide(a: Tensor, b: Tensor, c: Tensor) {
  yield [a, b, c];
}

let count = 0;
/** Declares a method with a fresh name; fn builds its stages. */
function declare(fn: (x: Placeholder) => Placeholder | readonly Placeholder[], outputs: readonly string[] = ['y']): void {
  register.method(`m${count++}`, { outputs }, (x) => fn(x));
}

const refused: [string, () => void, RegExp][] = [
  [
    'two stream stages',
    () => declare((x) => register.addStage(gen, [register.addStage(gen, [x], { stream: true })], { stream: true })),
    /method 'm\d+': has 2 stream stages \(stages 1, 2\); a method has at most one/,
  ],
  [
    'a stream stage that is not the last',
    () => declare((x) => register.addStage(plain, [register.addStage(gen, [x], { stream: true })])),
    /stream stage 1 \(Function 'gen'\) must be the method's last stage, it is followed by 1 more/,
  ],
  [
    'a method returning more than the stream stage outputs',
    () => declare((x) => [register.addStage(gen, [x], { stream: true }), x], ['y', 'x']),
    /must return exactly the outputs of its stream stage 1 \(Function 'gen'\), each once/,
  ],
  [
    'a method returning a stream output twice',
    () =>
      declare((x) => {
        const [a] = register.addStage(gen2, [x], { stream: true, outputsCount: 2 });
        return [a, a];
      }, ['a', 'b']),
    /must return exactly the outputs of its stream stage 1/,
  ],
  [
    'a method returning part of the stream outputs',
    () => declare((x) => register.addStage(gen2, [x], { stream: true, outputsCount: 2 })[0]),
    /must return exactly the outputs of its stream stage 1/,
  ],
  ['stream with batchSize', () => declare((x) => register.addStage(gen, [x], { stream: true, batchSize: 0 })), /stream and batchSize exclude each other/],
  ['stream on a plain function', () => declare((x) => register.addStage(plain, [x], { stream: true })), /a stream stage must be an async generator function \(async function\* plain\(\.\.\.\)\)/],
  ['stream on a model', () => declare((x) => register.addStage(register.declareModel({ modelFile: `s${count}.onnx` }), [x, x], { stream: true })), /stream is for function stages/],
  ['stream not a boolean', () => declare((x) => register.addStage(gen, [x], { stream: 'yes' } as never)), /addStage: stream must be true or false, got 'yes'/],
  ['a generator that takes more than its inputs and a context', () => declare((x) => register.addStage(wide, [x], { stream: true })), /takes 3 arguments but gets 1 inputs and a StreamContext/],
];

function catching(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

for (const [what, fn, message] of refused) {
  t.test(`refused: ${what}`, async (t) => {
    const err = catching(fn);
    t.ok(err instanceof ServingError, 'a ServingError');
    t.equal((err as ServingError).code, 'E_CONFIG_INVALID');
    t.match((err as ServingError).message, message);
  });
}

t.test('accepted: a last stream stage whose outputs the method returns, in any order, after other stages', async (t) => {
  t.doesNotThrow(() => declare((x) => register.addStage(gen, [register.addStage(plain, [x])], { stream: true })));
  t.doesNotThrow(() =>
    declare((x) => {
      const [a, b] = register.addStage(gen2, [x], { stream: true, outputsCount: 2 });
      return [b, a];
    }, ['b', 'a']),
  );
});
