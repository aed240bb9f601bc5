// The seeded generator of twinflow/testing, under the path the tests have always imported it from.
export { rng } from 'twinflow/testing';
