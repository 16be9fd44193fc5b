// The module build.mjs generates (`scram-dh:saslprep-tables`): SASLprep's tables.
type Table = { get(codePoint: number): boolean };
declare const tables: {
  unassigned_code_points: Table;
  commonly_mapped_to_nothing: Table;
  non_ASCII_space_characters: Table;
  prohibited_characters: Table;
  bidirectional_r_al: Table;
  bidirectional_l: Table;
};
export default tables;
