/** The part of seek-bzip 2 that imakit uses (the package ships no types). */
declare module 'seek-bzip' {
  interface ByteSink {
    writeByte(b: number): void;
  }
  const Bunzip: {
    decode(input: Uint8Array, output: ByteSink, multistream?: boolean): void;
  };
  export default Bunzip;
}
