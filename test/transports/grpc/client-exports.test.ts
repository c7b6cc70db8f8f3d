// `actorserve/client` is enough for a client program: it builds input tensors and reads string
// outputs without a second import from 'actorserve'. Imported through the package's own export
// map (a self-reference), as a user's program resolves it.
import t from 'tap';
import * as clientPackage from 'actorserve/client';
import * as mainPackage from 'actorserve';

t.test('actorserve/client exports tensor, stringTensor and tensorStrings', async (t) => {
  const { tensor, stringTensor, tensorStrings } = clientPackage;
  t.equal(tensor, mainPackage.tensor, 'the same tensor() as the main entry');
  t.equal(stringTensor, mainPackage.stringTensor, 'the same stringTensor() as the main entry');
  t.equal(tensorStrings, mainPackage.tensorStrings, 'the same tensorStrings() as the main entry');
  t.same(tensorStrings(stringTensor(['setosa', 'é'])), ['setosa', 'é'], 'strings round-trip through a string tensor');
  const x = tensor('float32', [2], Float32Array.of(1, 2));
  t.same([x.dtype, x.shape, [...x.data]], ['float32', [2], [1, 2]], 'tensor() builds a checked tensor');
  t.throws(() => tensor('float32', [3], Float32Array.of(1, 2)), { code: 'E_INVALID_SHAPE' }, 'a wrong length is refused');
});
