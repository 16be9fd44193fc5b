/**
 * SASLprep of `input` for a stored string (unassigned code points refused).
 * @param {string} input
 * @returns {string}
 * @throws {Error} for a prohibited character, an unassigned code point, or a
 *   bidirectional string RFC 3454 section 6 forbids
 */
export declare function saslprep(input: string): string;
