/// The characters a prompt, completion or answer may use: the 64-symbol character vocabulary of
/// the policy (`<pad> <bos> <eos>`, then these 61 characters). A task string outside it could not
/// be tokenised, so generators and dataset loaders check it up front.
public enum TaskAlphabet {
    /// Digits, lowercase letters, space, newline and `+ - * / = ? ! , . : ; ( ) < > [ ] ' " # % & _`.
    public static let characters: [Character] =
        Array("0123456789") + Array("abcdefghijklmnopqrstuvwxyz")
        + [" ", "\n", "+", "-", "*", "/", "=", "?", "!", ",", ".", ":", ";", "(", ")", "<", ">", "[", "]", "'", "\"", "#", "%", "&", "_"]

    public static let set: Set<Character> = Set(characters)

    /// The first character of `text` outside the alphabet, if any.
    public static func firstInvalidCharacter(in text: String) -> Character? {
        text.first { !set.contains($0) }
    }

    public static func contains(_ text: String) -> Bool { firstInvalidCharacter(in: text) == nil }
}
