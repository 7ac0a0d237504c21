// Package kernel holds the hot loops of the engine: dot products, matrix
// products over weights in their stored type, and the worker pool that
// splits them across cores.
package kernel
