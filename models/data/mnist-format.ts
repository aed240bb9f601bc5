// MNIST's shape as the models see it (no data here, so pages can import it): 28×28 digits padded to 32×32.

export const MNIST_SIDE = 32;
export const MNIST_CLASSES = 10;
