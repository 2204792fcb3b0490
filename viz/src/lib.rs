//! Lock/page lifetime graphs built from a trace (and only a trace), and their renderers.
