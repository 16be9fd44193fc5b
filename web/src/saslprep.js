// SASLprep (RFC 4013), as the server applies it to usernames and passwords
// (SPEC 7). The algorithm is @mongodb-js/saslprep's own; its tables, which that
// package ships as a 560 KB bitfield for browsers, reach the bundle as code-point
// ranges that build.mjs computes from the same package's table source
// (`scram-dh:saslprep-tables`), a few kilobytes searched by bisection.

// The package's exports map offers only its bound, bitfield-backed entry points;
// its algorithm takes the tables as an argument, so it is imported by path.
import saslprepWith from '../node_modules/@mongodb-js/saslprep/dist/index.js';
import tables from 'scram-dh:saslprep-tables';

/**
 * SASLprep of `input` for a stored string (unassigned code points refused).
 * @param {string} input
 * @returns {string}
 * @throws {Error} for a prohibited character, an unassigned code point, or a
 *   bidirectional string RFC 3454 section 6 forbids
 */
export function saslprep(input) {
  return saslprepWith(tables, input);
}
