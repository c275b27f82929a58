/// Token embedding lookup: `out[r] = table[token[r]]`. Its backward scatters rows back into the
/// table's gradient (rows that share a token accumulate).
public enum Embedding {
    public static func forward(
        tokens: UnsafePointer<Int32>, rows: Int, table: UnsafePointer<Float>, dim: Int,
        out: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            (out + r * dim).update(from: table + Int(tokens[r]) * dim, count: dim)
        }
    }

    public static func backward(
        tokens: UnsafePointer<Int32>, rows: Int, dOut: UnsafePointer<Float>, dim: Int,
        dTable: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            VectorOps.add(dOut + r * dim, dTable + Int(tokens[r]) * dim, dim)
        }
    }
}
