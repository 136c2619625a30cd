namespace Exo.Inference.Weights;

/// <summary>How a weight matrix's bytes are ordered.</summary>
public enum TensorLayout
{
    /// <summary>Row after row, as stored in GGUF and safetensors files.</summary>
    Rows,

    /// <summary>
    /// Q8_0 or Q4_0 rows in groups of <see cref="InterleavedRows.GroupRows"/>, the same bytes re-ordered (see
    /// <see cref="InterleavedRows"/>) so that one 256-bit load holds four values of each of eight rows.
    /// </summary>
    Interleaved,
}

/// <summary>
/// The interleaved layout of Q8_0 and Q4_0 matrices. Rows are taken eight at a time; a group holds its blocks' f16
/// scales first ([blocks, 8] halves), then their values ([blocks, chunks, 8, 4] bytes): chunk k of a block holds bytes
/// 4k .. 4k + 3 of each of the eight rows' blocks, row after row. A dot-product kernel multiplies one such chunk by
/// four activations broadcast to every row, so each row's sum stays in its own lane and the eight scales of a block
/// are one vector: no horizontal sums and no per-row broadcasts (what bounded row-by-row kernels on AVX2).
/// </summary>
public static unsafe class InterleavedRows
{
    public const int GroupRows = 8;

    /// <summary>Whether a matrix of this type and shape can be interleaved.</summary>
    public static bool Supports(DType type, int rows, int columns) =>
        type is DType.Q8_0 or DType.Q4_0 && rows > 0 && rows % GroupRows == 0 && columns > 0 && columns % DTypes.BlockSize(type) == 0;

    /// <summary>Bytes of one block's values (the block minus its f16 scale).</summary>
    public static int ValueBytes(DType type) => DTypes.BlockBytes(type) - 2;

    /// <summary>Bytes of one group of eight rows.</summary>
    public static long GroupBytes(DType type, int columns) => GroupRows * DTypes.ByteCount(type, columns);

    /// <summary>
    /// Writes <paramref name="rows"/> rows of row-layout blocks (row r read from <paramref name="sourceRow"/>(r)) into
    /// <paramref name="destination"/> in the interleaved layout. A block scale that is infinite or NaN (a corrupt file:
    /// every value of its block would be too) is refused, so that kernels may convert scales without those cases.
    /// </summary>
    public static void Interleave(string name, DType type, int rows, int columns, Func<int, ReadOnlySpan<byte>> sourceRow, byte* destination)
    {
        if (!Supports(type, rows, columns)) throw new ArgumentException($"{name}: {type}[{rows}, {columns}] cannot be interleaved");
        int blocks = columns / DTypes.BlockSize(type), blockBytes = DTypes.BlockBytes(type), valueBytes = ValueBytes(type);
        var groupBytes = GroupBytes(type, columns);
        for (var g = 0; g < rows / GroupRows; g++)
        {
            var scales = destination + g * groupBytes;
            var values = scales + (long)blocks * GroupRows * 2;
            for (var j = 0; j < GroupRows; j++)
            {
                var row = sourceRow(g * GroupRows + j);
                if (row.Length != blocks * blockBytes) throw new ArgumentException($"row {g * GroupRows + j} has {row.Length} bytes, not {blocks * blockBytes}");
                for (var b = 0; b < blocks; b++)
                {
                    var block = row.Slice(b * blockBytes, blockBytes);
                    if ((block[1] & 0x7C) == 0x7C)
                        throw new ModelFormatException($"tensor '{name}': row {g * GroupRows + j}, block {b} has a scale that is infinite or NaN");
                    scales[(b * GroupRows + j) * 2] = block[0];
                    scales[(b * GroupRows + j) * 2 + 1] = block[1];
                    var target = values + (long)b * GroupRows * valueBytes;
                    for (var k = 0; k < valueBytes / 4; k++)
                    {
                        for (var i = 0; i < 4; i++) target[(k * GroupRows + j) * 4 + i] = block[2 + 4 * k + i];
                    }
                }
            }
        }
    }

    /// <summary>Copies row <paramref name="row"/> of an interleaved matrix back into row-layout blocks.</summary>
    public static void CopyRow(DType type, byte* interleaved, int columns, int row, Span<byte> destination)
    {
        int blocks = columns / DTypes.BlockSize(type), blockBytes = DTypes.BlockBytes(type), valueBytes = ValueBytes(type);
        if (destination.Length != blocks * blockBytes) throw new ArgumentException($"destination holds {destination.Length} bytes, a row {blocks * blockBytes}");
        var scales = interleaved + row / GroupRows * GroupBytes(type, columns);
        var values = scales + (long)blocks * GroupRows * 2;
        var j = row % GroupRows;
        for (var b = 0; b < blocks; b++)
        {
            var block = destination.Slice(b * blockBytes, blockBytes);
            block[0] = scales[(b * GroupRows + j) * 2];
            block[1] = scales[(b * GroupRows + j) * 2 + 1];
            var source = values + (long)b * GroupRows * valueBytes;
            for (var k = 0; k < valueBytes / 4; k++)
            {
                for (var i = 0; i < 4; i++) block[2 + 4 * k + i] = source[(k * GroupRows + j) * 4 + i];
            }
        }
    }
}
