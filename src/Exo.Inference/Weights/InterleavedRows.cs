namespace Exo.Inference.Weights;

/// <summary>How a weight matrix's bytes are ordered.</summary>
public enum TensorLayout
{
    /// <summary>Row after row, as stored in GGUF and safetensors files.</summary>
    Rows,

    /// <summary>
    /// Q8_0, Q4_0 or Q4_K rows in groups of <see cref="InterleavedRows.GroupRows"/>, the same bytes re-ordered (see
    /// <see cref="InterleavedRows"/>) so that one 256-bit load holds four values of each of eight rows.
    /// </summary>
    Interleaved,
}

/// <summary>
/// The interleaved layout of Q8_0 and Q4_0 matrices (Q4_K: see <see cref="Q4KSuperBlockBytes"/>). Rows are taken eight at a time; a group holds its blocks' f16
/// scales first ([blocks, 8] halves), then their values ([blocks, chunks, 8, 4] bytes): chunk k of a block holds bytes
/// 4k .. 4k + 3 of each of the eight rows' blocks, row after row. A dot-product kernel multiplies one such chunk by
/// four activations broadcast to every row, so each row's sum stays in its own lane and the eight scales of a block
/// are one vector: no horizontal sums and no per-row broadcasts (what bounded row-by-row kernels on AVX2).
/// </summary>
public static unsafe class InterleavedRows
{
    public const int GroupRows = 8;

    /// <summary>
    /// Bytes of one Q4_K super-block of a group: the eight rows' d and dmin halves (32), each sub-block's eight 6-bit
    /// scales and mins unpacked to bytes (8 × 16), then each sub-block's values as a Q4_0 block's are laid out (8 × 128).
    /// </summary>
    public const int Q4KSuperBlockBytes = 32 + 8 * 16 + 8 * 128;

    /// <summary>Whether a matrix of this type and shape can be interleaved.</summary>
    public static bool Supports(DType type, int rows, int columns) =>
        type is DType.Q8_0 or DType.Q4_0 or DType.Q4_K && rows > 0 && rows % GroupRows == 0 && columns > 0 && columns % DTypes.BlockSize(type) == 0;

    /// <summary>Bytes of one block's values (the block minus its f16 scale).</summary>
    public static int ValueBytes(DType type) => DTypes.BlockBytes(type) - 2;

    /// <summary>Bytes of one group of eight rows.</summary>
    public static long GroupBytes(DType type, int columns) =>
        type == DType.Q4_K ? (long)columns / 256 * Q4KSuperBlockBytes : GroupRows * DTypes.ByteCount(type, columns);

    /// <summary>Bytes of a whole interleaved matrix.</summary>
    public static long ByteCount(DType type, int rows, int columns) => rows / GroupRows * GroupBytes(type, columns);

    /// <summary>
    /// Writes <paramref name="rows"/> rows of row-layout blocks (row r read from <paramref name="sourceRow"/>(r)) into
    /// <paramref name="destination"/> in the interleaved layout. A block scale that is infinite or NaN (a corrupt file:
    /// every value of its block would be too) is refused, so that kernels may convert scales without those cases.
    /// </summary>
    public static void Interleave(string name, DType type, int rows, int columns, Func<int, ReadOnlySpan<byte>> sourceRow, byte* destination)
    {
        if (!Supports(type, rows, columns)) throw new ArgumentException($"{name}: {type}[{rows}, {columns}] cannot be interleaved");
        if (type == DType.Q4_K)
        {
            InterleaveQ4K(name, rows, columns, sourceRow, destination);
            return;
        }

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
        if (type == DType.Q4_K)
        {
            CopyRowQ4K(interleaved, columns, row, destination);
            return;
        }

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

    // Q4_K blocks: [d: f16][dmin: f16][12 bytes of packed 6-bit scales and mins][128 bytes: value 64c + l in the low nibble
    // of byte 32c + l, value 64c + 32 + l in its high nibble]. Sub-block j of the layout holds values 32j .. 32j + 31.

    private static void InterleaveQ4K(string name, int rows, int columns, Func<int, ReadOnlySpan<byte>> sourceRow, byte* destination)
    {
        int superBlocks = columns / 256, blockBytes = DTypes.BlockBytes(DType.Q4_K);
        var groupBytes = GroupBytes(DType.Q4_K, columns);
        for (var g = 0; g < rows / GroupRows; g++)
        {
            for (var j = 0; j < GroupRows; j++)
            {
                var row = sourceRow(g * GroupRows + j);
                if (row.Length != superBlocks * blockBytes) throw new ArgumentException($"row {g * GroupRows + j} has {row.Length} bytes, not {superBlocks * blockBytes}");
                for (var s = 0; s < superBlocks; s++)
                {
                    var block = row.Slice(s * blockBytes, blockBytes);
                    if ((block[1] & 0x7C) == 0x7C || (block[3] & 0x7C) == 0x7C)
                        throw new ModelFormatException($"tensor '{name}': row {g * GroupRows + j}, super-block {s} has a scale that is infinite or NaN");
                    var record = destination + g * groupBytes + (long)s * Q4KSuperBlockBytes;
                    for (var i = 0; i < 2; i++)
                    {
                        record[2 * j + i] = block[i];
                        record[16 + 2 * j + i] = block[2 + i];
                    }

                    for (var sub = 0; sub < 8; sub++)
                    {
                        var (scale, min) = Quants.ScaleMin(block.Slice(4, 12), sub);
                        record[32 + 16 * sub + j] = (byte)scale;
                        record[32 + 16 * sub + 8 + j] = (byte)min;
                        var values = record + 160 + 128 * sub;
                        for (var i = 0; i < 16; i++)
                        {
                            // Q4_0's arrangement: byte i holds value i (low nibble) and value 16 + i (high nibble).
                            var packed = (byte)(Level(block, sub, i) | (Level(block, sub, 16 + i) << 4));
                            values[(i / 4 * GroupRows + j) * 4 + i % 4] = packed;
                        }
                    }
                }
            }
        }
    }

    /// <summary>Level (0..15) of value i of sub-block sub in a Q4_K block.</summary>
    private static int Level(ReadOnlySpan<byte> block, int sub, int i)
    {
        var q = block[16 + 32 * (sub / 2) + i];
        return sub % 2 == 0 ? q & 0xF : q >> 4;
    }

    private static void CopyRowQ4K(byte* interleaved, int columns, int row, Span<byte> destination)
    {
        int superBlocks = columns / 256, blockBytes = DTypes.BlockBytes(DType.Q4_K);
        if (destination.Length != superBlocks * blockBytes) throw new ArgumentException($"destination holds {destination.Length} bytes, a row {superBlocks * blockBytes}");
        var j = row % GroupRows;
        Span<byte> scales = stackalloc byte[8], mins = stackalloc byte[8];
        for (var s = 0; s < superBlocks; s++)
        {
            var record = interleaved + row / GroupRows * GroupBytes(DType.Q4_K, columns) + (long)s * Q4KSuperBlockBytes;
            var block = destination.Slice(s * blockBytes, blockBytes);
            for (var i = 0; i < 2; i++)
            {
                block[i] = record[2 * j + i];
                block[2 + i] = record[16 + 2 * j + i];
            }

            for (var sub = 0; sub < 8; sub++)
            {
                scales[sub] = record[32 + 16 * sub + j];
                mins[sub] = record[32 + 16 * sub + 8 + j];
                var values = record + 160 + 128 * sub;
                for (var i = 0; i < 16; i++)
                {
                    var packed = values[(i / 4 * GroupRows + j) * 4 + i % 4];
                    SetLevel(block, sub, i, packed & 0xF);
                    SetLevel(block, sub, 16 + i, packed >> 4);
                }
            }

            Quants.PackScaleMins(scales, mins, block.Slice(4, 12));
        }
    }

    private static void SetLevel(Span<byte> block, int sub, int i, int level)
    {
        ref var q = ref block[16 + 32 * (sub / 2) + i];
        q = (byte)(sub % 2 == 0 ? (q & 0xF0) | level : (q & 0x0F) | (level << 4));
    }
}
